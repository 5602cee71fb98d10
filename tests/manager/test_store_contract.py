"""The store contract, run against every backend: the embedded pyoxigraph store, and real
SPARQL 1.1 servers on loopback — the Oxigraph server and Virtuoso open source."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyoxigraph
import pytest
from pyoxigraph import DefaultGraph, Literal, NamedNode, Quad

from manager.service import Manager
from manager.store import Store, open_store
from provml.core.errors import QueryError, StoreError
from provml.core.resolve import resolve_batch
from provml.core.wire import parse_batch
from provml.offline import expand, read_lines
from query import questions
from tests.query.scenario import Scenario, build
from tests.sparql_servers import SparqlServer, start_oxigraph, start_virtuoso

#: the remote stores start a server process each: integration tests
BACKENDS = (
    "embedded",
    pytest.param("oxigraph-server", marks=pytest.mark.integration),
    pytest.param("virtuoso", marks=pytest.mark.integration),
)
_n = itertools.count()


@pytest.fixture(scope="module", params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    workdir = tmp_path_factory.mktemp(request.param)
    server: SparqlServer | None = None
    if request.param == "embedded":
        st = open_store(f"oxigraph:{workdir / 'store'}")
    elif request.param == "oxigraph-server":
        server = start_oxigraph(workdir)
        st = open_store(server.store_url)
    else:
        server = start_virtuoso(workdir)
        st = open_store(server.store_url)
    yield st
    st.close()
    if server is not None:
        server.stop()


def iri(name: str) -> NamedNode:
    return NamedNode(f"https://provml.dev/test/{name}")


def fresh() -> str:
    return f"t{next(_n)}"


def test_add_then_query_and_count(store: Store) -> None:
    t = fresh()
    before = store.count()
    quads = [Quad(iri(f"{t}/s{i}"), iri("p"), Literal(i), DefaultGraph()) for i in range(1000)]
    store.add(quads)
    assert store.count() == before + 1000
    mine = f'FILTER(STRSTARTS(STR(?s), "{iri(t).value}/"))'
    rows = store.query(f"SELECT ?s ?o WHERE {{ ?s {iri('p')} ?o . {mine} }} ORDER BY ?o")
    assert isinstance(rows, pyoxigraph.QuerySolutions)
    assert [int(r["o"].value) for r in rows] == list(range(1000))
    store.add(quads)  # the same quads again: a set, nothing new
    assert store.count() == before + 1000


def test_compaction_keeps_every_triple(store: Store) -> None:
    t = fresh()
    store.add([Quad(iri(f"{t}/s{i}"), iri("p"), Literal(i), DefaultGraph()) for i in range(500)])
    before = store.count()
    compacted = store.compact()
    assert compacted == (store.describe().startswith("embedded"))  # servers compact their own
    assert store.count() == before
    rows = store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ {iri(f'{t}/s499')} {iri('p')} ?o }}")
    assert int(next(iter(rows))["n"].value) == 1


def test_result_kinds_and_prefixes(store: Store) -> None:
    t = fresh()
    store.add([Quad(iri(t), NamedNode("http://www.w3.org/ns/prov#used"), iri(f"{t}/d"),
                    DefaultGraph())])  # fmt: skip
    assert bool(store.query(f"ASK {{ {iri(t)} prov:used ?d }}"))  # provml's prefixes work
    assert not bool(store.query(f"ASK {{ {iri(t)} prov:used {iri('nothing')} }}"))
    graph = store.query(f"CONSTRUCT {{ ?a prov:used ?d }} WHERE {{ VALUES ?a {{ {iri(t)} }} "
                        "?a prov:used ?d }")  # fmt: skip
    assert isinstance(graph, pyoxigraph.QueryTriples)
    assert [tr.object for tr in graph] == [iri(f"{t}/d")]


def test_a_bad_query_is_a_query_error(store: Store) -> None:
    with pytest.raises(QueryError):
        list(store.query("SELECT ?x WHERE { ?x"))


def test_update_adds_derivation_edges(store: Store) -> None:
    t = fresh()
    store.add(
        [
            Quad(iri(f"{t}/out"), NamedNode("http://www.w3.org/ns/prov#wasGeneratedBy"),
                 iri(f"{t}/act"), DefaultGraph()),
            Quad(iri(f"{t}/act"), NamedNode("http://www.w3.org/ns/prov#used"), iri(f"{t}/in"),
                 DefaultGraph()),
        ]
    )  # fmt: skip
    from provml.core.mapping import derivation_update

    update = derivation_update([iri(f"{t}/act").value])
    assert update is not None
    store.update(update)
    assert bool(store.query(f"ASK {{ {iri(f'{t}/out')} prov:wasDerivedFrom {iri(f'{t}/in')} }}"))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build(tmp_path_factory.mktemp("scenario"))


def load(store: Store, scenario: Scenario) -> None:
    manager = Manager(store)
    for f in expand([str(scenario.logs)]):
        for line in read_lines(f):
            manager.apply(resolve_batch(parse_batch(line.body)))


def answers(store: Store, s: Scenario) -> dict[str, list[dict[str, str]]]:
    asked = {
        "training-data": {"model": s.sha["m2"]},
        "data-derivation": {"model": s.sha["m2"]},
        "was-used": {"source": s.sha["raw-b"]},
        "downstream": {"source": s.sha["raw-b"]},
        "dataset-models": {"dataset": s.sha["v2"]},
        "prediction-trace": {"prediction": s.iri["p3"]},
        "best-epoch": {"training": s.iri["m2-train"]},
        "models-in-window": {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
        "commercial-use": {"model": s.sha["m4"]},
        "experiment-runs": {"workflow": "credit-model"},
        "dataset-comparison": {"workflow": "credit-model"},
    }
    out = {}
    for name, params in asked.items():
        result = store.query(questions.get(name, store.dialect).text(params))
        rows = [{v.value: _plain(row[v]) for v in result.variables if row[v] is not None}
                for row in result]  # fmt: skip
        out[name] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    return out


def _plain(term: object) -> str:
    value = getattr(term, "value", str(term))
    value = {"true": "1", "false": "0"}.get(value, value)  # Virtuoso's booleans are 1 and 0
    if value.startswith("{"):  # JSON literals: compare as JSON, not by spacing
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            pass
    try:  # times: "…11.1315Z" / "…11.131500Z"
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    try:  # numbers: servers differ in lexical forms ("0.86" / "8.6E-1")
        return repr(round(float(value), 9))
    except ValueError:
        pass
    # GROUP_CONCAT lists come in no defined order
    return " ".join(sorted(value.replace(",", " ").split()))


def test_named_questions_answer_the_same_on_every_store(
    store: Store, scenario: Scenario, tmp_path: Path
) -> None:
    """The question files run on the server itself, and give the embedded store's answers."""
    load(store, scenario)
    reference = open_store("memory:")
    load(reference, scenario)
    expected = answers(reference, scenario)
    got = answers(store, scenario)
    for name in expected:
        assert expected[name], name  # the scenario answers every one of them
        assert got[name] == expected[name], name


def test_an_unreachable_server_is_a_store_error() -> None:
    from tests.conftest import free_port

    gone = open_store(f"oxigraph+http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreError, match="unreachable"):
        gone.count()
    with pytest.raises(StoreError, match="unreachable"):
        gone.add([Quad(iri("x"), iri("p"), iri("y"), DefaultGraph())])


@pytest.mark.integration
def test_a_write_the_server_refuses_is_not_retried(tmp_path: Path) -> None:
    """A 4xx answer to a write is a refusal (set aside by the tracker), not an outage."""
    from manager.store.sparql import SparqlStore, StoreRefused

    server = start_oxigraph(tmp_path / "ox")
    try:
        # a Graph Store endpoint that does not exist: the server answers 404
        store = SparqlStore(server.url + "/query", server.url + "/update", server.url + "/nowhere",
                            store_takes_quads=True)  # fmt: skip
        with pytest.raises(StoreRefused):
            store.add([Quad(iri("x"), iri("p"), iri("y"), DefaultGraph())])
        assert store.count() == 0
    finally:
        server.stop()


def test_a_store_that_cannot_be_opened_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from manager.store.oxigraph import OxigraphStore
    from provml.core.errors import StoreError

    first = OxigraphStore(str(tmp_path / "store"))
    with pytest.raises(StoreError) as err:  # the lock is held: another process, likely
        OxigraphStore(str(tmp_path / "store"))
    assert "another provml process" in err.value.message
    first.close()
    # a directory this user cannot write (root can write anywhere: os.access says so)
    monkeypatch.setattr("os.access", lambda *_: False)
    monkeypatch.setattr("pyoxigraph.Store", lambda *_: (_ for _ in ()).throw(OSError("IO error")))
    with pytest.raises(StoreError) as err:
        OxigraphStore(str(tmp_path / "store"))
    assert "not writable here" in err.value.message
