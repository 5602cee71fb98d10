"""Workflow Run RO-Crates in and out (provml/interop/rocrate), checked with the ``rocrate``
package: it reads what provml writes, and writes what provml reads."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pyoxigraph import Quad

from provml.core import ids
from provml.core.errors import ValidationError
from provml.core.mapping import batch_to_quads
from provml.core.resolve import resolve_batch
from provml.core.wire import validate_batch
from provml.interop.rocrate import open_crate, to_batches, write_crate, write_metadata
from tests.conftest import SHA_A, SHA_M, full_records, make_batch

rocrate = pytest.importorskip("rocrate.rocrate")
DONE = "http://schema.org/CompletedActionStatus"


def _quads(*batches: dict[str, Any]) -> list[Quad]:
    out: list[Quad] = []
    for b in batches:
        out += batch_to_quads(resolve_batch(validate_batch(b)))
    return out


def _id(value: Any) -> str:
    """An entity's id, as rocrate gives a reference to one it holds or not."""
    return value if isinstance(value, str) else str(value.id)


def _run_of(batch: dict[str, Any]) -> str:
    return ids.execution_iri(batch["session"], 1)


def _written(
    tmp_path: Path, batch: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Path, str]:
    batch = batch or make_batch(full_records())
    run = _run_of(batch)
    md = write_metadata(_quads(batch), run)
    write_crate(md, str(tmp_path / "crate"))
    return md, tmp_path / "crate", run


def test_rocrate_reads_what_provml_writes(tmp_path: Path) -> None:
    _, where, run = _written(tmp_path)
    crate = rocrate.ROCrate(str(where))
    root = crate.root_dataset
    profiles = {p["@id"] if isinstance(p, dict) else p.id for p in root["conformsTo"]}
    assert "https://w3id.org/ro/wfrun/provenance/0.5" in profiles
    assert "https://w3id.org/ro/wfrun/workflow/0.5" in profiles
    workflow = crate.mainEntity
    assert "ComputationalWorkflow" in workflow.type and workflow["name"] == "wf"
    actions = {e.id: e for e in crate.get_entities() if e.type == "CreateAction"}
    assert set(actions) == {run} | {ids.execution_iri(run[-36:-8] + "00000000", n)
                                    for n in (2, 3, 7, 8, 10)}  # fmt: skip
    the_run = actions[run]
    assert the_run["instrument"].id == workflow.id
    assert the_run["agent"]["name"] == "alice"
    assert the_run["startTime"] == "2023-11-14T22:13:20Z"
    assert _id(the_run["actionStatus"]) == "http://schema.org/CompletedActionStatus"
    train = actions[ids.execution_iri(run[-36:-8] + "00000000", 3)]
    assert train["provml:stage"] == "training"
    (data,) = train["object"][:1]
    assert data["sha256"] == "c" * 64 and data.type == "File"
    (model,) = [r for r in train["result"] if r.type == "File"]
    assert model["sha256"] == SHA_M and "provml:Model" in model["additionalType"]
    params = {p["name"]: p["value"] for p in train["object"] if p.type == "PropertyValue"}
    assert params["lr"] == 0.1 and json.loads(params["layers"]) == [8, 4]
    metrics = [r for r in train["result"] if r.type == "PropertyValue"]
    assert {m["name"] for m in metrics} == {"loss"}
    failed = actions[ids.execution_iri(run[-36:-8] + "00000000", 7)]
    assert _id(failed["actionStatus"]) == "http://schema.org/FailedActionStatus"
    assert failed["error"] == "ValueError: boom"
    # steps: a HowToStep per tool, a ControlAction per step, one OrganizeAction
    assert len(workflow["step"]) == 5 and all(s.type == "HowToStep" for s in workflow["step"])
    controls = [e for e in crate.get_entities() if e.type == "ControlAction"]
    assert {c["object"].id for c in controls} == set(actions) - {run}
    (organize,) = [e for e in crate.get_entities() if e.type == "OrganizeAction"]
    assert organize["result"].id == run
    # referenced, not copied: every File is a web-based entity with its digest
    files = [e for e in crate.get_entities() if e.type == "File"]
    assert files and all(f.id.startswith(ids.ID_BASE) and "sha256" in f for f in files)
    assert sorted(p.name for p in where.iterdir()) == ["ro-crate-metadata.json"]


def test_a_crate_provml_wrote_comes_back_as_the_same_graph(tmp_path: Path) -> None:
    batch = make_batch(full_records())
    original = set(_quads(batch))
    _, where, _ = _written(tmp_path, batch)
    with open_crate(str(where)) as source:
        imported = to_batches(source)
    assert imported.runs == 1 and imported.steps == 5 and not imported.skipped
    again = set(_quads(*(b.to_json() for b in imported.batches)))
    lineage = ("wasGeneratedBy", "used", "wasDerivedFrom", "partOf", "sha256", "status")
    for name in lineage:
        mine = {q for q in again if q.predicate.value.endswith(name)}
        theirs = {q for q in original if q.predicate.value.endswith(name)}
        # 11 is an end without a start, part of no run: not in the run's crate
        theirs = {q for q in theirs if str(q.subject)[-9:-1] != "0000000b"}
        assert mine == theirs, name
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as zf:
        zf.write(where / "ro-crate-metadata.json", "ro-crate-metadata.json")
    with open_crate(str(tmp_path / "c.zip")) as source:
        assert [b.to_json() for b in to_batches(source).batches] == [
            b.to_json() for b in imported.batches
        ]


def _rocrate_run(tmp_path: Path, run_id: str = "#run-1") -> Path:
    """A two-step Workflow Run Crate made with the rocrate package's API, with its files."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "wf.cwl").write_text("class: Workflow\n")
    (src / "raw.csv").write_text("a,b\n1,2\n")
    (src / "clean.csv").write_text("a,b\n1,2\n")
    crate = rocrate.ROCrate()
    wf = crate.add_workflow(str(src / "wf.cwl"), "wf.cwl", main=True, lang="cwl",
                            properties={"name": "curate"})  # fmt: skip
    raw = crate.add_file(str(src / "raw.csv"), "raw.csv")
    clean = crate.add_file(str(src / "clean.csv"), "clean.csv")
    tmpval = crate.add_jsonld({"@id": "#tmp/sorted", "@type": "CreativeWork", "name": "sorted"})
    sort = crate.add(rocrate.ContextEntity(crate, "#sort-tool", {"@type": "SoftwareApplication",
                                                                  "name": "sort"}))  # fmt: skip
    dedup = crate.add(rocrate.ContextEntity(crate, "#dedup-tool", {
        "@type": "SoftwareApplication", "name": "dedup"}))  # fmt: skip
    threshold = crate.add_jsonld({"@id": "#param-k", "@type": "PropertyValue", "name": "k",
                                  "value": 3})  # fmt: skip
    crate.add_action(wf, identifier=run_id, object=[raw, threshold], result=[clean],
                     properties={"name": "run", "startTime": "2024-05-01T10:00:00Z",
                                 "endTime": "2024-05-01T10:05:00Z",
                                 "actionStatus": {"@id": DONE}})  # fmt: skip
    crate.add_action(sort, identifier="#step-sort", object=[raw], result=[tmpval],
                     properties={"startTime": "2024-05-01T10:01:00Z",
                                 "endTime": "2024-05-01T10:02:00Z"})  # fmt: skip
    crate.add_action(dedup, identifier="#step-dedup", object=[tmpval, threshold], result=[clean],
                     properties={"startTime": "2024-05-01T10:03:00Z",
                                 "endTime": "2024-05-01T10:04:00Z",
                                 "actionStatus": {"@id": DONE}})  # fmt: skip
    out = tmp_path / "crate"
    crate.write(str(out))
    return out


def test_provml_reads_what_rocrate_writes(tmp_path: Path) -> None:
    where = _rocrate_run(tmp_path)
    with open_crate(str(where)) as source:
        imported = to_batches(source)
    assert (imported.runs, imported.steps, imported.untimed, imported.skipped) == (1, 2, 0, [])
    (batch,) = imported.batches
    records = {(r["kind"], tuple(r.get("plan", [r.get("name")]))): r for r in batch.records}
    raw = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    sort = records[("task_start", ("curate", "sort"))]
    assert sort["used"]["raw.csv"]["sha256"] == raw  # hashed from the crate's file
    made = records[("task_end", ("curate", "sort"))]["generated"]["sorted"]
    assert made == {"@id": "#tmp/sorted", "name": "sorted"}  # the crate's own, no content
    dedup = records[("task_start", ("curate", "dedup"))]
    sort_iri = ids.execution_iri(sort["session"], sort["n"])
    assert dedup["used"]["sorted"] == {"@entity": f"{sort_iri}/generated/sorted"}
    assert dedup["params"] == {"k": 3}
    assert records[("workflow_start", ("curate",))]["params"] == {"k": 3}
    assert records[("workflow_end", ("curate",))]["status"] == "finished"
    # the same crate again: the same batches (nothing new); written again elsewhere with
    # another run id: other executions
    with open_crate(str(where)) as source:
        assert to_batches(source).batches[0].to_json() == batch.to_json()


def test_a_crate_without_content_never_meets_another(tmp_path: Path) -> None:
    """Two crates whose input has no digest and no file: their inputs stay two nodes."""
    quads = []
    for name in ("a", "b"):
        doc = {"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": [
            {"@id": "ro-crate-metadata.json", "@type": "CreativeWork", "about": {"@id": "./"}},
            {"@id": "./", "@type": "Dataset", "mainEntity": {"@id": "main.nf"}},
            {"@id": "main.nf", "@type": ["File", "ComputationalWorkflow"], "name": "wf"},
            {"@id": "#run", "@type": "CreateAction", "instrument": {"@id": "main.nf"},
             "startTime": f"2024-01-0{1 if name == 'a' else 2}T00:00:00Z",
             "object": {"@id": "https://example.org/input.txt"}},
            {"@id": "#t", "@type": "CreateAction", "instrument": {"@id": "#tool"},
             "object": {"@id": "https://example.org/input.txt"}, "result": {"@id": "out.txt"}},
        ]}  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "ro-crate-metadata.json").write_text(json.dumps(doc))
        with open_crate(str(tmp_path / name)) as source:
            imported = to_batches(source)
        assert imported.untimed == 1  # the step took its run's time
        quads += _quads(*(b.to_json() for b in imported.batches))
    used = {q.object for q in quads if q.predicate.value.endswith("#used")
            and "data/sha256" in str(q.object)}  # fmt: skip
    assert len(used) == 2


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ([], "no metadata descriptor"),
        ([{"@id": "ro-crate-metadata.json", "about": {"@id": "./"}},
          {"@id": "./", "@type": "Dataset"}], "not a Workflow Run Crate"),
        ([{"@id": "ro-crate-metadata.json", "about": {"@id": "./"}},
          {"@id": "./", "@type": "Dataset", "mainEntity": {"@id": "w"}},
          {"@id": "#r", "@type": "CreateAction", "instrument": {"@id": "w"}}],
         "no startTime or endTime"),
    ],
)  # fmt: skip
def test_bad_crates_are_refused_with_the_reason(
    tmp_path: Path, graph: list[Any], message: str
) -> None:
    (tmp_path / "ro-crate-metadata.json").write_text(json.dumps({"@graph": graph}))
    with pytest.raises(ValidationError, match=message), open_crate(str(tmp_path)) as source:
        to_batches(source)


def test_not_a_crate(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not an RO-Crate"):
        open_crate(str(tmp_path))
    (tmp_path / "ro-crate-metadata.json").write_text("{")
    with pytest.raises(ValidationError, match="not JSON"), open_crate(str(tmp_path)) as source:
        to_batches(source)
    assert SHA_A  # the fixtures' digests are what the export names


def test_data_named_by_a_description_claims_no_sha256(tmp_path: Path) -> None:
    # MLflow's datasets (and ProvLake's references) are named by the SHA-256 of what the
    # importer knew of them, not of their bytes: the crate said it was the file's sha256
    t0 = 1_700_000_000.0
    named = {"@data": "dataset", "sha256": "d" * 64, "name": "train",
             "sha256_of": "the MLflow dataset's name, digest and source"}  # fmt: skip
    records = [
        {"kind": "workflow_start", "n": 1, "name": "exp", "time": t0},
        {"kind": "task_start", "n": 2, "parent": 1, "plan": ["exp", "train"], "time": t0,
         "used": {"training/train": named, "raw": {"@data": "file", "sha256": SHA_A}}},
        {"kind": "task_end", "n": 2, "plan": ["exp", "train"], "time": t0 + 1},
        {"kind": "workflow_end", "n": 1, "name": "exp", "time": t0 + 1},
    ]  # fmt: skip
    md, _, _ = _written(tmp_path, make_batch(records))
    files = {e["@id"].rsplit("/", 1)[-1]: e for e in md["@graph"] if e.get("@type") == "File"}
    assert "sha256" not in files["d" * 64] and files["d" * 64]["name"] == "train"
    assert files[SHA_A]["sha256"] == SHA_A
