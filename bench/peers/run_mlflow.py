"""MLflow with the local file store (``file:`` tracking URI), one nested run per task.

MLflow 3 keeps the file store in maintenance mode and refuses it unless
``MLFLOW_ALLOW_FILE_STORE=true``; this runner sets it. Every call writes its files
synchronously on the caller's thread (``meta.yaml``, one file per param, metric and tag).
"""

from __future__ import annotations

import os

import _harness as h


def count_runs(root: str) -> tuple[int, int]:
    """(runs, runs missing a param or the metric) under an experiment directory."""
    runs = incomplete = 0
    for dirpath, _dirs, files in os.walk(root):
        if "meta.yaml" not in files or os.path.basename(os.path.dirname(dirpath)) == ".trash":
            continue
        if not os.path.isdir(os.path.join(dirpath, "params")):
            continue  # the experiment's own meta.yaml
        runs += 1
        params = os.listdir(os.path.join(dirpath, "params"))
        metrics = os.listdir(os.path.join(dirpath, "metrics"))
        if params and (len(params) != 4 or metrics != ["loss"]):
            incomplete += 1
    return runs, incomplete


def main() -> None:
    args = h.parse_args()
    name = h.task_names(args)
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    import mlflow

    store = os.path.join(args.workdir, "mlruns")
    mlflow.set_tracking_uri("file:" + store)
    experiment = mlflow.set_experiment("bench")
    mlflow.start_run(run_name="bench")

    def task() -> None:
        mlflow.start_run(run_name=name(), nested=True)
        mlflow.log_params({"lr": 0.1, "epochs": 3, "opt": "sgd", "shuffle": True})
        mlflow.log_metric("loss", 0.5)
        mlflow.end_run()

    result = h.measure(task, args.tasks, args.warmup, lambda: None, mlflow.end_run)
    runs, incomplete = count_runs(os.path.join(store, experiment.experiment_id))
    result.update(
        records=runs,
        records_expected=args.tasks + args.warmup + 1,
        incomplete_runs=incomplete,
        versions=h.versions("mlflow", "mlflow-skinny"),
    )
    h.emit(result)


if __name__ == "__main__":
    main()
