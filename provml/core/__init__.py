"""The pure core every other layer shares; it does no I/O of its own and imports nothing
of the project and no web or HTTP library.

* :mod:`.vocab` — the PROV-O and PROV-ML terms and prefixes;
* :mod:`.ids` — identifiers: content hashes, IRIs, short forms, UUIDv7 sessions;
* :mod:`.wire` — the wire format capture_lib sends and the services check;
* :mod:`.resolve` — identifiers assigned to a batch's executions and values;
* :mod:`.mapping` — a resolved batch as PROV-O / PROV-ML quads;
* :mod:`.hashprefix` — a unique hash prefix expanded to its IRI;
* :mod:`.sparql_text` — what a SPARQL text is, before a store parses it;
* :mod:`.errors` — the error hierarchy, with the HTTP status each maps to;
* :mod:`.config` — every ``PROVML_*`` setting, typed, with its default.
"""
