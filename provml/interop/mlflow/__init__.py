"""MLflow → provml wire batches: experiments, runs, parameters, metric histories,
dataset inputs, logged and registered models (docs/importers.md).

Two readers give the same plain data (:mod:`.source`): a tracking store read with
MLflow's own client (:mod:`.tracking`, which alone imports ``mlflow``, when called), and
the JSON dumps of ``mlflow-tools`` (:mod:`.dumps`). :mod:`.convert` turns that into
validated wire batches whose identifiers are functions of MLflow's ids, which the
tracker then takes like any client's: importing the same runs again adds nothing.
"""

from provml.interop.mlflow.convert import Converted, to_batches
from provml.interop.mlflow.dumps import dump_files, read_dumps
from provml.interop.mlflow.source import Snapshot
from provml.interop.mlflow.tracking import is_mlruns, is_tracking_uri, read_tracking

__all__ = [
    "Converted",
    "Snapshot",
    "dump_files",
    "is_mlruns",
    "is_tracking_uri",
    "read_dumps",
    "read_tracking",
    "to_batches",
]
