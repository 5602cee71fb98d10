"""provml: provenance of ML and HPC workflows as a W3C PROV graph.

The layers (docs/architecture.md): :mod:`provml.core` is the pure core (vocabulary,
identifiers, wire format, mapping, errors, settings); :mod:`provml.interop` reads and
writes other formats; :mod:`provml.web` is the Flask support the services share. The
services are the packages ``tracker``, ``manager`` and ``query``; capture is
``capture_lib``. :mod:`provml.server` composes them and :mod:`provml.cli` is the
``provml`` command; :mod:`provml.offline` loads records without a server.
"""

__version__ = "0.1.0"
