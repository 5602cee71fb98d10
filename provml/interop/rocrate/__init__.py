"""Workflow Run RO-Crates in and out (docs/ro-crate.md).

* :mod:`.writer`: one workflow run of the graph (the quads of the export's ``run``
  scope) → the ``ro-crate-metadata.json`` of a Workflow Run Crate following the
  Provenance Run Crate profile: the run and each task a ``CreateAction``, the workflow a
  ``ComputationalWorkflow``, each task's plan a ``SoftwareApplication`` with its
  ``HowToStep`` and ``ControlAction``, data as ``File`` entities named by their SHA-256.
  Data files are referenced, never copied.
* :mod:`.reader`: a crate (a directory or a zip file, as nf-prov, cwltool/runcrate or the
  ``rocrate`` package write them) → validated provml wire batches, one per workflow run,
  which then take the path of ``POST /api/v1/batches``.
* :mod:`.source`: reading the crate's metadata and hashing its files, from a directory or
  straight from a zip file (nothing is extracted).

Pure: no HTTP, no store; the ``rocrate`` package is not needed (the tests use it to
read what this writes and to write what this reads).
"""

from provml.interop.rocrate.reader import Imported, to_batches
from provml.interop.rocrate.source import CrateSource, open_crate
from provml.interop.rocrate.writer import write_crate, write_metadata

__all__ = ["CrateSource", "Imported", "open_crate", "to_batches", "write_crate", "write_metadata"]
