"""Triple store backends, chosen by URL scheme through a registry with lazy imports.

``open_store("provml-data/store")`` or ``open_store("oxigraph:provml-data/store")``
opens the embedded on-disk pyoxigraph store; ``open_store("memory:")`` an in-memory one
(tests); ``oxigraph+http://HOST:PORT``, ``virtuoso+http://HOST:PORT`` or
``sparql+http://…`` a SPARQL 1.1 server (:mod:`manager.store.sparql`).
"""

from __future__ import annotations

import importlib

from manager.store.base import Store
from provml.core.errors import ConfigError

#: scheme → "module:Class"
BACKENDS: dict[str, str] = {
    "oxigraph": "manager.store.oxigraph:OxigraphStore",
    "memory": "manager.store.oxigraph:OxigraphStore",
    **{
        f"{flavour}+{proto}": "manager.store.sparql:SparqlStore"
        for flavour in ("sparql", "oxigraph", "virtuoso")
        for proto in ("http", "https")
    },
}


def open_store(url: str) -> Store:
    scheme, sep, rest = url.partition(":")
    if not sep or len(scheme) < 2 or "/" in scheme:  # a plain path (or C:\ on Windows)
        scheme, rest = "oxigraph", url
    target = BACKENDS.get(scheme)
    if target is None:
        raise ConfigError(f"no store backend for {scheme!r}; known: {sorted(BACKENDS)}")
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    store: Store = cls.from_url(scheme, rest)
    return store


__all__ = ["BACKENDS", "Store", "open_store"]
