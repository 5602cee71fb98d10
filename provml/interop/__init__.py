"""Formats in and out: W3C PROV documents (:mod:`.documents` reads them, :mod:`.prov`
turns the ``prov`` package's PROV-O into quads, :mod:`.export` writes a store's graph
back as PROV) and the ProvLake client's messages (:mod:`.provlake`).

This layer imports only :mod:`provml.core` (and pyoxigraph, prov): no web framework and
no service. The names most callers need are re-exported here.
"""

from provml.interop.documents import (
    EXPORT_FORMATS,
    FORMATS,
    IMPORT_FORMATS,
    Format,
    Imported,
    format_named,
    guess_format,
    parse_document,
    read_document,
)

__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "IMPORT_FORMATS",
    "Format",
    "Imported",
    "format_named",
    "guess_format",
    "parse_document",
    "read_document",
]
