"""/api/v1/lineage and /api/v1/lineage/fold: every edge a triple of the graph, every view
connected, fan-outs folded with exact counts; captured workflows and W3C PROV documents
nobody here wrote (the PROV primer, the PROV family's own provenance)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.vocab import PROV_NS, PROVML_NS
from query.app import create_app
from query.web import lineage as lineage_view
from tests.conftest import CORPUS, needs
from tests.query.web.world import PREDICTIONS, World

PRIMER = CORPUS / "provtoolbox" / "validation" / "primer.provn"
#: a real Taverna workflow run, as Taverna exported it (PROV-O, Turtle)
TAVERNA = (
    CORPUS
    / "provbench-wf4ever"
    / "Taverna_repository"
    / "workflow_1055_version_1"
    / "run_1"
    / "workflowrun.prov.ttl"
)


def view(
    client: FlaskClient, node: str, direction: str = "both", depth: int = 2, **more: Any
) -> dict[str, Any]:
    r = client.get(
        "/api/v1/lineage",
        query_string={"node": node, "direction": direction, "depth": depth, **more},
    )
    assert r.status_code == 200, r.json
    body: dict[str, Any] = r.json
    return body


def _predicate(relation: str) -> str:
    return (PROVML_NS if relation == "partOf" else PROV_NS) + relation


def check_view(store: OxigraphStore, body: dict[str, Any]) -> None:
    """Every edge is a triple of the graph (or ends at a fold of that node), and every
    node is reached from the root by the view's edges: nothing unconnected is shown."""
    ids = {n["id"] for n in body["nodes"]}
    assert body["root"] in ids and len(ids) == len(body["nodes"])
    adjacent: dict[str, set[str]] = {}
    for e in body["edges"]:
        s, t, rel = e["source"], e["target"], e["relation"]
        assert s in ids and t in ids, e
        fold = next((n["fold"] for n in body["nodes"] if n["id"] in (s, t) and "fold" in n), None)
        if fold is None:
            assert bool(store.query(f"ASK {{ <{s}> <{_predicate(rel)}> <{t}> }}")), e
        else:
            assert fold["relation"] == rel and fold["node"] in (s, t)
        adjacent.setdefault(s, set()).add(t)
        adjacent.setdefault(t, set()).add(s)
    reached, todo = {body["root"]}, [body["root"]]
    while todo:
        for nxt in adjacent.get(todo.pop(), ()):
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    assert reached == ids


def test_every_view_of_every_node_is_true_and_connected(client: FlaskClient, world: World) -> None:
    nodes = sorted(
        {
            row[0].value
            for row in world.store.query(
                "SELECT DISTINCT ?n WHERE { { ?n prov:used ?x } UNION "
                "{ ?n prov:wasGeneratedBy ?x } "
                "UNION { ?x prov:used ?n } UNION { ?n provml:partOf ?x } UNION "
                "{ ?x prov:wasAssociatedWith ?n } } "
            )
        }
    )
    assert len(nodes) > 100
    for node in nodes:
        for direction in ("up", "down", "both"):
            check_view(world.store, view(client, node, direction, 3))


def _iris(body: dict[str, Any]) -> set[str]:
    return {n["id"] for n in body["nodes"]}


def test_two_workflows_sharing_nothing_never_meet(client: FlaskClient, world: World) -> None:
    island = view(client, world.runs["island"], "both", 10)
    shown = _iris(island)
    others = {world.runs[k] for k in ("alice-1", "alice-2", "bob", "serve", "hpc")}
    assert not shown & others
    # a walk never turns round: down from the run are its task and what the task made,
    # not what the task used (that is up from the task)
    assert world.iri("own") not in shown
    assert {n["type"] for n in island["nodes"]} == {"run", "task", "data", "person"}
    for label in ("raw", "alice-1-model"):
        assert world.iri(label) not in _iris(view(client, world.sha["own"], "both", 10))
    # a person who ran two workflows is no path between them: up from alice's first run's
    # training reaches alice, never her second run
    train = next(
        n["id"]
        for n in view(client, world.runs["alice-1"], "down", 1)["nodes"]
        if n["label"] == "train"
    )
    up = _iris(view(client, train, "up", 10))
    assert world.runs["alice-1"] in up and "https://provml.dev/id/persona/alice" in up
    assert world.runs["alice-2"] not in up and world.runs["serve"] not in up


def test_two_workflows_sharing_a_source_both_show_below_it(
    client: FlaskClient, world: World
) -> None:
    below = _iris(view(client, world.sha["raw"], "down", 4))
    for label in ("alice-1-model", "alice-2-model", "bob-model"):
        assert world.iri(label) in below
    assert world.iri("own") not in below
    up = _iris(view(client, world.sha["bob-model"], "up", 4))
    assert world.iri("raw") in up and world.iri("alice-1-model") not in up


def test_nodes_have_kinds_types_labels_and_pages(client: FlaskClient, world: World) -> None:
    body = view(client, world.sha["alice-1-model"], "both", 2)
    by_id = {n["id"]: n for n in body["nodes"]}
    model = by_id[world.iri("alice-1-model")]
    assert model["kind"] == "entity" and model["type"] == "model"
    assert model["sha256"] == world.sha["alice-1-model"] and model["label"] == "model.pkl"
    assert model["url"] == "/models/" + world.sha["alice-1-model"]
    clean = by_id[world.iri("alice-1-clean")]
    assert clean["type"] == "data" and clean["url"] == "/datasets/" + world.sha["alice-1-clean"]
    run = by_id[world.runs["alice-1"]]
    assert (run["kind"], run["type"], run["label"]) == ("activity", "run", "pipeline")
    assert run["url"] == "/runs/" + world.runs["alice-1"].rsplit("/", 1)[1]
    types = {n["type"] for n in body["nodes"]}
    assert {"task", "value", "evaluation"} <= types  # lr, the evaluation's accuracy
    lr = next(n for n in body["nodes"] if n["type"] == "value")
    assert lr["label"] == "lr = 0.05" and lr["url"].startswith("/lineage?node=")
    # a node by a prefix of its hash, and by a run's id
    assert view(client, world.sha["alice-1-model"][:10], "up", 1)["root"] == model["id"]
    assert view(client, run["url"].rsplit("/", 1)[1], "up", 1)["root"] == run["id"]


def test_a_fan_out_folds_with_its_exact_count(client: FlaskClient, world: World) -> None:
    body = view(client, world.runs["serve"], "down", 2)
    (fold,) = [n for n in body["nodes"] if "fold" in n]
    assert fold["count"] == PREDICTIONS and fold["type"] == "prediction"
    assert fold["label"] == f"{PREDICTIONS} predictions" and fold["kind"] == "entity"
    assert fold["fold"]["relation"] == "wasGeneratedBy" and fold["fold"]["direction"] == "down"
    task = fold["fold"]["node"]
    assert {"source": fold["id"], "target": task, "relation": "wasGeneratedBy"} in body["edges"]
    # the same task's one metric is of another type: shown, not folded
    assert [n["label"] for n in body["nodes"] if n["type"] == "evaluation"] == ["latency = 0.25"]
    assert not [n for n in body["nodes"] if n["type"] == "prediction" and "fold" not in n]
    # a page at a time, through all of them, none twice
    seen: list[str] = []
    offset = 0
    while True:
        r = client.get(
            "/api/v1/lineage/fold", query_string={**fold["fold"], "offset": offset, "limit": 25}
        )
        assert r.status_code == 200, r.json
        page = r.json
        seen += [n["id"] for n in page["nodes"]]
        assert all(n["type"] == "prediction" for n in page["nodes"])
        assert all(n["url"].startswith("/predictions/") for n in page["nodes"])
        assert {(e["source"], e["target"], e["relation"]) for e in page["edges"]} == {
            (n["id"], task, "wasGeneratedBy") for n in page["nodes"]
        }
        offset += 25
        if not page["more"]:
            break
    assert len(seen) == len(set(seen)) == PREDICTIONS
    # with a larger fold, every prediction is its own node
    wide = view(client, world.runs["serve"], "down", 2, fold=PREDICTIONS)
    assert len([n for n in wide["nodes"] if n["type"] == "prediction"]) == PREDICTIONS
    check_view(world.store, wide)


def test_fold_by_relation_and_type(client: FlaskClient, world: World) -> None:
    body = view(client, world.sha["raw"], "down", 1, fold=2)
    folds = {(n["fold"]["relation"], n["type"]): n["count"] for n in body["nodes"] if "fold" in n}
    # three clean tasks used it, three cleaned files derive from it
    assert folds == {("used", "task"): 3, ("wasDerivedFrom", "data"): 3}
    assert len(body["nodes"]) == 3
    check_view(world.store, body)


def test_a_view_stops_at_the_node_limit(
    client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lineage_view, "MAX_NODES", 7)
    body = view(client, world.sha["raw"], "down", 5)
    assert body["truncated"] is True and len(body["nodes"]) == 7
    check_view(world.store, body)
    assert view(client, world.sha["raw"], "up", 1)["truncated"] is False


@pytest.mark.parametrize(
    "query",
    [
        "",
        "node=",
        "direction=up",
        "node=x&direction=sideways",
        "node=x&depth=0",
        "node=x&depth=11",
        "node=x&depth=two",
        "node=x&fold=0",
        "node=x&colour=red",
        "node=sha256:abc",
        "node=x&node=y",
    ],
)
def test_bad_lineage_requests_are_400(client: FlaskClient, world: World, query: str) -> None:
    query = query.replace("node=x", f"node={world.sha['raw']}")
    r = client.get("/api/v1/lineage?" + query)
    assert r.status_code == 400, (query, r.json)
    assert r.json["error"] and r.json["message"]


def test_unknown_nodes_are_404(client: FlaskClient) -> None:
    for node in ("https://example.org/nothing", "0" * 64, "abcdef0123"):
        r = client.get("/api/v1/lineage", query_string={"node": node})
        assert r.status_code == 404, (node, r.json)
    r = client.get(
        "/api/v1/lineage/fold",
        query_string={"node": "https://example.org/nothing", "relation": "used", "direction": "up"},
    )
    assert r.status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"relation": "likes", "direction": "up"},
        {"relation": "used", "direction": "both"},
        {"relation": "used", "direction": "up", "type": "cat"},
        {"relation": "used", "direction": "up", "limit": "1001"},
        {"relation": "used"},
        {"direction": "up"},
    ],
)
def test_bad_fold_requests_are_400(
    client: FlaskClient, world: World, params: dict[str, str]
) -> None:
    r = client.get("/api/v1/lineage/fold", query_string={"node": world.sha["raw"], **params})
    assert r.status_code == 400, (params, r.json)


@pytest.fixture(scope="module")
def prov_docs() -> Iterator[tuple[OxigraphStore, FlaskClient]]:
    store = OxigraphStore(None)
    manager = Manager(store)
    manager.import_document(PRIMER.read_bytes(), "provn", None)
    manager.import_document(TAVERNA.read_bytes(), "turtle", None)
    yield store, create_app({"store": store}).test_client()


def _names(body: dict[str, Any]) -> set[str]:
    return {n["id"].rsplit("/", 1)[-1].rsplit("#", 1)[-1].rsplit(":", 1)[-1] for n in body["nodes"]}


@needs(PRIMER)
@needs(TAVERNA)
def test_the_prov_primer_up_and_down(prov_docs: tuple[OxigraphStore, FlaskClient]) -> None:
    store, client = prov_docs
    ex = "http://example/"
    up = view(client, ex + "chart2", "up", 5)
    check_view(store, up)
    assert _names(up) == {"chart2", "dataSet2", "compile2", "correct", "dataSet1"}
    edges = {(e["source"][len(ex) :], e["relation"], e["target"][len(ex) :]) for e in up["edges"]}
    assert ("chart2", "wasDerivedFrom", "dataSet2") in edges
    assert ("dataSet2", "wasGeneratedBy", "correct") in edges
    assert ("correct", "used", "dataSet1") in edges
    down = view(client, ex + "dataSet1", "down", 1)
    check_view(store, down)
    assert _names(down) == {"dataSet1", "compose", "correct", "articleV1", "dataSet2"}
    derek = view(client, ex + "derek", "both", 1)
    check_view(store, derek)
    kinds = {n["id"][len(ex) :]: n["kind"] for n in derek["nodes"]}
    assert kinds == {
        "derek": "agent",
        "chartgen": "agent",
        "compose": "activity",
        "illustrate": "activity",
        "chart1": "entity",
    }
    relations = {e["relation"] for e in derek["edges"]}
    assert relations == {"actedOnBehalfOf", "wasAssociatedWith", "wasAttributedTo"}
    # the primer and the PROV family's document share nothing: neither shows the other
    assert all(n["id"].startswith(ex) for n in view(client, ex + "dataSet1", "both", 10)["nodes"])


@needs(PRIMER)
@needs(TAVERNA)
def test_a_taverna_run(prov_docs: tuple[OxigraphStore, FlaskClient]) -> None:
    store, client = prov_docs
    run = "http://ns.taverna.org.uk/2011/run/3fdc7e2f-1714-42c3-a133-6b4054250124/"
    data = "http://ns.taverna.org.uk/2011/data/3fdc7e2f-1714-42c3-a133-6b4054250124/ref/"
    # the export was informed by the run; the run made the workflow's output
    up = view(client, run, "down", 1)
    check_view(store, up)
    assert {(e["relation"], e["target"]) for e in up["edges"]} >= {
        ("wasInformedBy", run),
        ("wasGeneratedBy", run),
    }
    assert data + "eecc57ac-c867-4da5-bfb3-24649824baea" in _iris(up)
    # every node of the document, every way: each edge a triple, each view connected,
    # and nothing of the primer (which shares nothing with it)
    text = "SELECT DISTINCT ?n WHERE { { ?n prov:used ?x } UNION { ?n prov:wasGeneratedBy ?x } }"
    nodes = [row[0].value for row in store.query(text)]
    taverna = [n for n in nodes if n.startswith("http://ns.taverna.org.uk/")]
    assert len(taverna) >= 8
    for node in taverna:
        for direction in ("up", "down", "both"):
            body = view(client, node, direction, 10)
            check_view(store, body)
            assert not any(n["id"].startswith("http://example/") for n in body["nodes"])
    # its processes' inputs trace back through what made them
    first = data + "6421a9de-e519-4415-bd73-4278f73f6d5d"
    below = view(client, first, "down", 10)
    check_view(store, below)
    assert len(below["nodes"]) > 3
