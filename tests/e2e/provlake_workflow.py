"""One workflow, instrumented twice: with the real ProvLake client (PyPI ``provlake``,
unmodified) and with capture_lib. Run as its own process by the ProvLake tests.

usage: python provlake_workflow.py provlake-online SERVICE_URL LOGDIR
       python provlake_workflow.py provlake-offline LOGDIR
       python provlake_workflow.py capture-lib URL WORKDIR

Prints one JSON line: the workflow execution's IRI (capture_lib) or ProvLake ids.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

WORKFLOW = "credit-scoring"

#: ProvLake prospective provenance of the workflow, in the shape its client POSTs. The
#: semantics tell provml that predict's plain "input" is data, not a parameter; "stage"
#: is provml's (train gets its stage from the task's custom metadata instead).
SPEC: dict[str, Any] = {
    "context_name": "provml-tests",
    "dataflow_name": WORKFLOW,
    "storages": {},
    "data_transformations": {
        "clean": {
            "input_datasets": [{"attributes": [
                {"name": "raw", "dtype": "string", "semantics": "FILE_REFERENCE"},
                {"name": "drop_na", "dtype": "boolean", "semantics": "PARAMETER"},
            ]}],
            "output_datasets": [{"attributes": [
                {"name": "clean", "dtype": "string", "semantics": "FILE_REFERENCE"},
            ]}],
        },
        "predict": {
            "stage": "inference",
            "input_datasets": [{"attributes": [
                {"name": "model", "dtype": "string", "semantics": "FILE_REFERENCE"},
                {"name": "input", "dtype": "complex_attribute", "semantics": "INPUT_VALUE"},
            ]}],
            "output_datasets": [{"attributes": [
                {"name": "prediction", "dtype": "complex_attribute", "semantics": "OUTPUT_VALUE"},
            ]}],
        },
    },
}  # fmt: skip


def with_provlake(service_url: str | None, log_dir: str) -> dict[str, Any]:
    from provlake import ProvLake
    from provlake.capture import ProvTask, ProvWorkflow
    from provlake.utils.args_handler import add_custom_metadata, get_data_reference
    from provlake.utils.constants import Status

    prov = ProvLake.get_persister(service_url=service_url, log_dir=log_dir)
    prov.persist_prospective(SPEC)

    def model() -> Any:
        return add_custom_metadata(get_data_reference("model.pkl"), {"@data": "model"})

    with ProvWorkflow(prov, WORKFLOW, custom_metadata={"owner": "risk-team"}) as wf:
        inputs = {"raw": get_data_reference("data/raw.csv"), "drop_na": True}
        with ProvTask(prov, "clean", wf, inputs) as t:
            t.end({"clean": get_data_reference("data/clean.csv")})
        inputs = {"data": get_data_reference("data/clean.csv"), "lr": 0.1, "epochs": 3}
        with ProvTask(prov, "train", wf, inputs, custom_metadata={"stage": "training"}) as t:
            trained = get_data_reference("model.pkl")
            t.end(
                {"model": add_custom_metadata(trained, {"@data": "model", "framework": "sklearn"})}
            )
        with ProvTask(prov, "validate", wf, {"model": model()},
                      custom_metadata={"stage": "validation"}) as t:  # fmt: skip
            t.end({}, status=Status.ERRORED, stderr="ValueError: boom")
        with ProvTask(prov, "predict", wf, {"model": model(), "input": {"x": [1, 2]}}) as t:
            t.end({"prediction": {"y": 1}})
    return {"wf_execution": wf.wf_exec_id, "log": prov.get_file_path()}


def with_capture_lib(url: str, workdir: Path) -> dict[str, Any]:
    import capture_lib as cl

    workdir.mkdir(parents=True, exist_ok=True)
    cl.init(url=url, mode="http", path=str(workdir / "spool"))
    raw, clean, model = workdir / "raw.csv", workdir / "clean.csv", workdir / "model.pkl"
    raw.write_text("x,y\n1,2\n,3\n")
    with cl.workflow(WORKFLOW) as wf:
        with wf.task("clean", used={"raw": cl.file(raw)}, params={"drop_na": True}) as t:
            clean.write_text("x,y\n1,2\n")
            t.generated(clean=cl.file(clean))
        with wf.task(
            "train",
            stage="training",
            used={"data": cl.file(clean)},
            params={"lr": 0.1, "epochs": 3},
        ) as t:
            model.write_bytes(b"a model")
            t.generated(model=cl.model(model, framework="sklearn"))
        try:
            with wf.task("validate", stage="validation", used={"model": cl.model(model)}):
                raise ValueError("boom")
        except ValueError:
            pass
        with wf.task(
            "predict", stage="inference", used={"model": cl.model(model), "input": {"x": [1, 2]}}
        ) as t:
            t.generated(prediction={"y": 1})
    return {"flushed": cl.flush(30), "stats": cl.stats(), "workflow": wf.iri}


def main() -> None:
    mode = sys.argv[1]
    if mode == "provlake-online":
        result = with_provlake(sys.argv[2], sys.argv[3])
    elif mode == "provlake-offline":
        result = with_provlake(None, sys.argv[2])
    else:
        result = with_capture_lib(sys.argv[2], Path(sys.argv[3]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
