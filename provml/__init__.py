"""provml: provenance of ML and HPC workflows as a W3C PROV graph.

The core package holds what every component shares and does no I/O of its own:
the vocabulary (:mod:`provml.vocab`), the wire format (:mod:`provml.wire`),
identifiers (:mod:`provml.ids`), the record → RDF mapping (:mod:`provml.mapping`)
and configuration (:mod:`provml.config`). The ``provml`` command lives in
:mod:`provml.cli`.
"""

__version__ = "0.1.0"
