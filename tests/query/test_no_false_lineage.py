"""Lineage never connects what did not touch (issue [8], items 1 and 2).

Two teams capture on their own: both name a ``raw.csv`` that does not exist, and both
train on the same bytes kept at different paths, saving the same model bytes at
different paths, each team under its own names, version labels, splits and framework
labels. Every answer about one team's run must name only that run's places, labels and
executions; only the content itself (the same bytes) may be shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyoxigraph
import pytest

import capture_lib as cl
from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.ids import content_iri
from provml.core.resolve import resolve_batch
from provml.core.wire import parse_batch
from provml.interop import export as interop
from provml.offline import expand, read_lines
from query import questions
from query.records import dataset_record, model_record


class World:
    def __init__(self, store: OxigraphStore, tmp: Path) -> None:
        self.store, self.tmp = store, tmp
        self.runs: dict[str, str] = {}
        self.lost: dict[str, int] = {}
        self.data_sha = ""
        self.model_sha = ""


#: each team's version label and split for its data, and framework label for its model
LABELS = {"a": ("v1", "train", "sklearn"), "b": ("2024-06", "test", "scikit-learn"),
          "c": ("v1", "train", "sklearn")}  # fmt: skip


def _team(tmp: Path, team: str, world: World) -> None:
    home = tmp / team
    home.mkdir()
    data, model = home / f"{team}-data.csv", home / f"{team}-model.pkl"
    # teams a and b train on the same bytes; team c on its own data, into the same model
    data.write_text("x,y\n1,2\n3,4\n" if team != "c" else "x,y\n5,6\n")
    clean = home / "clean.csv"
    clean.write_text("the same cleaned bytes\n")  # one content node made by both teams
    with cl.workflow(f"team-{team}") as wf:
        world.runs[team] = wf.iri
        with wf.task("clean", used={"raw": cl.file(home / "raw.csv")}) as t:
            t.generated(clean=cl.file(clean))
        # what each team calls the same bytes is its own (LABELS)
        version, split, framework = LABELS[team]
        used = cl.dataset(data, name=f"{team}-set", version=version, split=split)
        with wf.task("train", stage="training", used={"data": used}) as t:
            model.write_bytes(b"the same model bytes")
            t.generated(model=cl.model(model, framework=framework, name=f"{team}-model"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("teams")
    store = OxigraphStore(None)
    w = World(store, tmp)
    logs = tmp / "logs"
    cl.init(mode="disk", path=str(logs))
    try:
        for team in ("a", "b", "c"):
            _team(tmp, team, w)
        with cl.workflow("serve") as wf:  # loads team a's model under another label
            used = {"model": cl.model(tmp / "a" / "a-model.pkl", framework="onnx")}
            with wf.task("predict", stage="inference", used=used) as t:
                t.generated(label="yes")
        assert cl.flush()
        w.lost = dict(cl.stats()["lost"])
    finally:
        cl.shutdown()
    manager = Manager(store)
    for f in expand([str(logs)]):
        for line in read_lines(f):
            assert line.error is None
            manager.apply(resolve_batch(parse_batch(line.body)))
    w.data_sha = cl.refs.sha256_file(str(tmp / "a" / "a-data.csv"))[0]
    w.model_sha = cl.refs.sha256_file(str(tmp / "a" / "a-model.pkl"))[0]
    yield w


def ask(store: OxigraphStore, name: str, **params: str) -> list[dict[str, str]]:
    result = store.query(questions.get(name).text(params))
    assert isinstance(result, pyoxigraph.QuerySolutions)
    names = result.variables
    return [{v.value: row[v].value for v in names if row[v] is not None} for row in result]


def _sparql(store: OxigraphStore, text: str) -> list[tuple[str, ...]]:
    result = store.query("PREFIX prov: <http://www.w3.org/ns/prov#> "
                         "PREFIX provml: <https://provml.dev/ns#> " + text)  # fmt: skip
    assert isinstance(result, pyoxigraph.QuerySolutions)
    return sorted(tuple(t.value for t in row) for row in result)


def test_a_missing_input_is_an_entity_of_its_use_alone(world: World) -> None:
    missing = _sparql(
        world.store,
        "SELECT ?node ?path ?error ?task WHERE { ?node a provml:MissingData ; "
        "provml:path ?path ; provml:error ?error . ?task prov:used ?node }",
    )
    assert len(missing) == 3, missing  # one per team, not one shared node
    assert len({node for node, *_ in missing}) == len({task for *_, task in missing}) == 3
    assert {Path(path).parent.name for _, path, _, _ in missing} == {"a", "b", "c"}
    assert all("No such file" in error for _, _, error, _ in missing)
    # never content-addressed: no sha256, not under the content namespace
    assert not _sparql(
        world.store, "SELECT ?n WHERE { ?n a provml:MissingData ; provml:sha256 ?s }"
    )
    assert not any(n.startswith(content_iri("")) for n, *_ in missing)
    assert world.lost.get("unreadable_input") == 3


def test_a_missing_input_joins_nothing(world: World) -> None:
    for team in ("a", "b", "c"):
        ((node,),) = _sparql(
            world.store,
            "SELECT ?n WHERE { ?n a provml:MissingData ; ^prov:used/provml:partOf "
            f"<{world.runs[team]}> }}",
        )
        # downstream of a team's missing raw.csv: the clean bytes as made by that team's
        # task only (the other team made the same bytes, from its own missing input)
        downstream = ask(world.store, "downstream", source=node)
        assert [(r["kind"], r["generatedBy"]) for r in downstream] == [
            ("data", _task(world, team, "clean"))
        ]
        assert ask(world.store, "was-used", source=node) == []  # no model came of it


def _task(world: World, team: str, name: str) -> str:
    ((task,),) = _sparql(
        world.store,
        f"SELECT ?t WHERE {{ ?t provml:partOf <{world.runs[team]}> ; provml:name {name!r} }}",
    )
    return task


def _team_of(world: World, run: str) -> str:
    return next(team for team, iri in world.runs.items() if iri == run)


def test_the_same_model_bytes_from_other_data_join_nothing(world: World) -> None:
    """Team c trained the same model bytes from other data: it is no user of the data
    teams a and b trained on, though the model node is one."""
    trainings = {_task(world, t, "train") for t in "ab"}
    used = ask(world.store, "was-used", source=world.data_sha)
    assert {r["training"] for r in used} == trainings
    models = ask(world.store, "dataset-models", dataset=world.data_sha)
    assert {r["training"] for r in models} == trainings
    downstream = ask(world.store, "downstream", source=world.data_sha)
    assert {r["generatedBy"] for r in downstream} == trainings


def test_the_path_is_on_the_use_not_on_the_content(world: World) -> None:
    data = content_iri(world.data_sha)
    assert not _sparql(world.store, f"SELECT ?p WHERE {{ <{data}> provml:path ?p }}")
    usages = _sparql(
        world.store,
        f"SELECT ?run ?path ?host WHERE {{ ?t prov:qualifiedUsage ?u ; provml:partOf ?run . "
        f"?u prov:entity <{data}> ; provml:path ?path ; provml:hostname ?host }}",
    )
    assert [(r, Path(p).name) for r, p, _ in usages] == sorted(
        [(world.runs["a"], "a-data.csv"), (world.runs["b"], "b-data.csv")]
    )  # team c's data is other content


def test_training_data_names_each_runs_own_path(world: World) -> None:
    rows = ask(world.store, "training-data", model=world.model_sha)
    assert len(rows) == 3, rows  # one training per team, one data input each
    for row in rows:
        team = _team_of(world, row["run"])
        assert Path(row["path"]).name == f"{team}-data.csv", row
        assert (row["version"], row["split"]) == LABELS[team][:2], row


def test_models_lists_one_row_per_training_with_its_own_path(world: World) -> None:
    rows = [r for r in ask(world.store, "models") if r["sha256"] == world.model_sha]
    assert len(rows) == 3, rows  # was nine: three paths on the content times three trainings
    for row in rows:
        team = _team_of(world, row["run"])
        assert Path(row["path"]).name == f"{team}-model.pkl", row
        assert row["framework"] == LABELS[team][2], row


def test_labels_are_on_the_use_not_on_the_content(world: World) -> None:
    for sha in (world.data_sha, world.model_sha):
        node = content_iri(sha)
        assert not _sparql(
            world.store,
            f"SELECT ?p ?v WHERE {{ <{node}> ?p ?v . FILTER(?p IN (provml:name, "
            "provml:version, provml:split, provml:framework, provml:metadata)) }",
        )
    uses = ask(world.store, "data-uses", data=world.data_sha)
    assert sorted((_team_of(world, u["run"]), u["name"], u["version"], u["split"])
                  for u in uses) == [("a", "a-set", "v1", "train"),
                                     ("b", "b-set", "2024-06", "test")]  # fmt: skip


def test_prediction_model_names_the_framework_its_inference_loaded(world: World) -> None:
    (prediction,) = _sparql(world.store, "SELECT ?p WHERE { ?p a provml:Prediction }")
    rows = ask(world.store, "prediction-model", prediction=prediction[0])
    assert [(r["framework"], Path(r["path"]).name) for r in rows] == [("onnx", "a-model.pkl")]


def test_records_list_every_place_once(world: World) -> None:
    model = model_record(world.store, world.model_sha)
    assert sorted(Path(p).name for p in model["paths"]) == [f"{t}-model.pkl" for t in "abc"]
    # every label any run gave it, once; each training's own in its entry
    assert model["framework"] == "onnx, scikit-learn, sklearn"  # onnx: as served
    assert model["name"] == "a-model, b-model, c-model"
    for training in model["trainings"]:
        team = _team_of(world, training["run"])
        assert [Path(d["path"]).name for d in training["data"]] == [f"{team}-data.csv"]
        assert (training["framework"], training["name"]) == (LABELS[team][2], f"{team}-model")
    dataset = dataset_record(world.store, world.data_sha)
    (version,) = dataset["versions"]  # one content, seen at two places
    assert sorted(Path(p).name for p in version["paths"]) == ["a-data.csv", "b-data.csv"]
    assert (version["label"], version["split"]) == ("2024-06, v1", "test, train")


def test_a_run_export_names_only_that_run(world: World) -> None:
    quads = interop.collect(world.store, "run", world.runs["a"])
    text = interop.write(quads, "ntriples").decode()
    assert world.runs["b"] not in text
    assert "b-data.csv" not in text and "b-model.pkl" not in text
    assert "a-data.csv" in text and "a-model.pkl" in text
    # the content nodes are there (both teams share them), without team b's generations
    assert content_iri(world.model_sha) in text
    # the generation of the shared model by team b's run is not part of team a's run
    mine = {
        iri
        for (iri,) in _sparql(
            world.store, f"SELECT ?x WHERE {{ ?x provml:partOf* <{world.runs['a']}> }}"
        )
    }
    generations = [q for q in quads if q.predicate.value.endswith("#qualifiedGeneration")]
    generators = [q.object.value for q in quads if q.predicate.value.endswith("#wasGeneratedBy")]
    assert generations and all(
        q.object.value.rsplit("/generation/")[0] in mine for q in generations
    )
    assert generators and set(generators) <= mine
