"""The lineage index (provml/core/lineage_index.py) gives the rows the walks give.

``was-used`` and ``downstream`` of a raw source are read from the index when it is
complete; these tests build the index every way it gets built — rebuilt at once, kept
write by write in every order the writes can come in (one quad at a time included), by
several writers whose writes and upkeep interleave, by the manager from real batches, by
``provml ingest --data-dir`` — and compare the rows with the walk's, exactly and in order,
for every node of graphs with what derivation data has: chains from shared sources,
diamonds, cycles, a source that is its own descendant, entities made by two runs,
models typed only where they are used, evaluations. Timings are the benchmark's.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyoxigraph
import pytest
from pyoxigraph import NamedNode, Quad

from manager import lineage
from manager.service import Manager
from manager.store import Store, open_store
from manager.store.oxigraph import OxigraphStore
from provml.core import lineage_index
from provml.core.mapping import batch_to_quads, derivation_update, deriving_executions
from provml.core.resolve import resolve_batch
from provml.core.wire import parse_batch
from provml.offline import expand, read_lines
from query import questions
from tests.query.scenario import Scenario, build
from tests.query.test_lineage_rewrites import PROV, PROVML, RDF_TYPE, Graph, _n, generated, rows
from tests.sparql_servers import start_oxigraph

QUESTIONS = ("was-used", "downstream")


def nodes(store: pyoxigraph.Store) -> list[NamedNode]:
    """Every entity a question could be asked about, and one that is not there."""
    found = {
        q.subject
        for q in store.quads_for_pattern(None, None, None, pyoxigraph.DefaultGraph())
        if isinstance(q.subject, NamedNode) and "/exec/" not in q.subject.value
    }
    found |= {
        q.object
        for q in store.quads_for_pattern(None, None, None, pyoxigraph.DefaultGraph())
        if isinstance(q.object, NamedNode) and "/raw/" in q.object.value
    }
    return [*sorted(found, key=str), _n("raw", "absent")]


def answers(store: OxigraphStore, sources: Iterable[NamedNode]) -> dict[tuple[str, str], list]:
    """Each question's rows for each source, through :func:`questions.chosen` (the index
    where it may answer), and which were read from the index."""
    out: dict[tuple[str, str], list] = {}
    for name in QUESTIONS:
        q = questions.get(name)
        for source in sources:
            values = {"source": source.value}
            picked = questions.chosen(store, q, values)
            out[(name, source.value)] = rows(store._store, picked.text(values))
            out[("indexed", name, source.value)] = [picked is q.indexed]  # type: ignore[index]
    return out


def walked(store: pyoxigraph.Store, sources: Iterable[NamedNode]) -> dict[tuple[str, str], list]:
    return {
        (name, s.value): rows(store, questions.get(name).text({"source": s.value}))
        for name in QUESTIONS
        for s in sources
    }


def same_rows(got: dict, expected: dict) -> int:
    """Assert every answer equals the walk's; the number read from the index."""
    for key, want in expected.items():
        assert got[key] == want, key
    return sum(bool(v[0]) for k, v in got.items() if k[0] == "indexed")


def opened(store: Store) -> lineage.Index:
    """The index as a writer opens it, before its first write (as the manager does)."""
    index = lineage.Index(store)
    index.prepare()
    return index


def fresh() -> OxigraphStore:
    return OxigraphStore(None)


@pytest.mark.parametrize("seed", range(4))
def test_a_rebuilt_index_gives_the_walks_rows(seed: int) -> None:
    built, _ = generated(seed)
    store = fresh()
    store.add(list(built))
    sources = nodes(built)
    before = answers(store, sources)
    assert sum(bool(v[0]) for k, v in before.items() if k[0] == "indexed") == 0  # no mark
    assert opened(store).state == "missing"
    lineage.rebuild(store)
    assert opened(store).state == "complete"
    expected = walked(store._store, sources)
    used = same_rows(answers(store, sources), expected)
    assert used >= 8  # the raw sources, both questions
    assert any(expected[("downstream", s.value)] for s in sources if "/raw/" in s.value)


def _write_in_order(store: OxigraphStore, index: lineage.Index, chunks: list[list[Quad]]) -> None:
    for chunk in chunks:
        store.add(chunk)
        index.maintain((), chunk)


@pytest.mark.parametrize("seed", range(6))
def test_an_index_kept_write_by_write_in_any_order_gives_the_walks_rows(seed: int) -> None:
    built, _ = generated(seed)
    quads = sorted(built, key=str)
    rng = random.Random(seed)
    rng.shuffle(quads)  # edges before their inputs' edges, types after or before edges
    size = rng.choice((1, 7, 60))
    store = fresh()
    index = opened(store)
    assert index.state == "pending"
    _write_in_order(store, index, [quads[i : i + size] for i in range(0, len(quads), size)])
    assert index.state == "complete"
    sources = nodes(built)
    assert same_rows(answers(store, sources), walked(store._store, sources)) >= 8


@pytest.mark.parametrize("seed", range(6))
def test_writers_whose_writes_and_upkeep_interleave_keep_it_exact(seed: int) -> None:
    """Several managers on one store: each runs its upkeep after its own write committed,
    but the others' writes and upkeep come between, in any order (the proof in
    provml/core/lineage_index.py)."""
    built, _ = generated(seed)
    quads = sorted(built, key=str)
    rng = random.Random(100 + seed)
    rng.shuffle(quads)
    store = fresh()
    indexes = [opened(store) for _ in range(3)]  # each before its first write
    steps: list[tuple[int, list[Quad]]] = []  # (writer, its chunk), write then upkeep
    for i in range(0, len(quads), 9):
        steps.append((rng.randrange(3), quads[i : i + 9]))
    pending: list[tuple[int, list[Quad]]] = []
    for writer, chunk in steps:
        store.add(chunk)
        pending.append((writer, chunk))
        while pending and rng.random() < 0.5:  # some upkeep runs later, out of order
            w, done = pending.pop(rng.randrange(len(pending)))
            indexes[w].maintain((), done)
    for w, done in pending:
        indexes[w].maintain((), done)
    sources = nodes(built)
    assert same_rows(answers(store, sources), walked(store._store, sources)) >= 8


def test_a_model_typed_only_where_it_is_used_is_found() -> None:
    """A model whose making did not say it is a model, typed by a later batch that uses
    it: was-used finds it once the type is written, as the walk does."""
    g = Graph()
    raw, data, model = _n("raw", 0), _n("file", 0), _n("model", 0)
    g.task([raw], [data], name="clean")
    g.task([data], [model], name="train")
    typed = Quad(model, NamedNode(RDF_TYPE), NamedNode(PROVML + "Model"), pyoxigraph.DefaultGraph())
    store = fresh()
    index = opened(store)
    _write_in_order(store, index, [g.quads, [typed]])
    expected = walked(store._store, [raw])
    assert expected[("was-used", raw.value)]  # the model, through the data
    assert same_rows(answers(store, [raw]), expected) == 2


def test_a_source_that_gains_a_parent_is_walked() -> None:
    g = Graph()
    first, data = _n("raw", 0), _n("file", 0)
    g.task([first], [data], name="clean")
    g.model(_n("model", 0), [data], uses=1, metric=True)
    store = fresh()
    index = opened(store)
    _write_in_order(store, index, [g.quads])
    assert answers(store, [first])[("indexed", "was-used", first.value)] == [True]
    later = Graph()
    later.runs = 100
    later.task([_n("raw", "older")], [first], name="fetch")  # first is no longer raw
    _write_in_order(store, index, [later.quads])
    sources = [first, _n("raw", "older"), data]
    got = answers(store, sources)
    assert got[("indexed", "was-used", first.value)] == [False]
    assert got[("indexed", "downstream", _n("raw", "older").value)] == [True]
    same_rows(got, walked(store._store, sources))


def test_a_dialect_store_keeps_no_index_and_walks() -> None:
    store = fresh()
    store.dialect = "virtuoso"
    index = opened(store)
    assert index.state == "not kept"
    g = Graph()
    g.task([_n("raw", 0)], [_n("file", 0)])
    store.add(g.quads)
    assert index.maintain((), g.quads) == 0
    assert not bool(store.query(lineage_index.IS_MARKED))
    assert "downstream" not in {
        n for n, q in questions.questions("virtuoso").items() if q.indexed is not None
    }


# ---- the real write paths: the manager from captured batches, ingest, a SPARQL server --


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build(tmp_path_factory.mktemp("scenario"))


def _batches(scenario: Scenario) -> list[Any]:
    return [
        resolve_batch(parse_batch(line.body))
        for f in expand([str(scenario.logs)])
        for line in read_lines(f)
    ]


def _plain(store: Store, text: str) -> list[tuple[str | None, ...]]:
    result = store.query(text)
    return [tuple(None if t is None else str(t) for t in row) for row in result]


def _entities(store: Store) -> list[str]:
    text = "SELECT DISTINCT ?e WHERE { ?e a prov:Entity } ORDER BY ?e"
    return [row[0].value for row in store.query(text)]


def compare_on(store: Store) -> int:
    """Both questions about every entity of ``store``, by :func:`questions.chosen`,
    against the walk on the same store; the number of answers read from the index."""
    used = 0
    for name in QUESTIONS:
        q = questions.get(name, store.dialect)
        for e in _entities(store):
            values = {"source": e}
            picked = questions.chosen(store, q, values)
            used += picked is not q
            assert _plain(store, picked.text(values)) == _plain(store, q.text(values)), (name, e)
    return used


def test_the_manager_keeps_it_from_captured_batches_in_any_order(scenario: Scenario) -> None:
    batches = _batches(scenario)
    for seed in range(3):
        random.Random(seed).shuffle(batches)  # task_end before task_start, models late
        store = OxigraphStore(None)
        manager = Manager(store)
        for batch in batches:
            manager.apply(batch)
        assert manager.lineage.state == "complete"
        assert compare_on(store) >= 4  # both raw sources, both questions


def test_ingest_data_dir_keeps_it(scenario: Scenario, tmp_path: Path) -> None:
    from provml.offline import load_direct

    store = OxigraphStore(str(tmp_path / "store"))
    try:
        report = load_direct(expand([str(scenario.logs)]), store)
        assert report.batches > 0 and not report.refused
        assert opened(store).state == "complete"
        assert compare_on(store) >= 4
    finally:
        store.close()


def test_reindex_builds_it_for_a_store_written_without_it(
    scenario: Scenario, tmp_path: Path
) -> None:
    """A store an older provml wrote (no index, no mark): the questions walk; ``provml
    reindex`` builds it, and the same rows come from the index."""
    from click.testing import CliRunner

    from provml.cli import main

    data = tmp_path / "data"
    store = OxigraphStore(str(data / "store"))
    for batch in _batches(scenario):  # as the manager wrote before it kept the index
        store.add(list(batch_to_quads(batch)))
        update = derivation_update(deriving_executions(batch))
        if update is not None:
            store.update(update)
    assert opened(store).state == "missing"
    before = {e: _plain(store, questions.get("downstream").text({"source": e}))
              for e in _entities(store)}  # fmt: skip
    assert compare_on(store) == 0
    store.close()
    del store
    gc.collect()  # the query results let go of the store, and so of its lock
    result = CliRunner().invoke(main, ["reindex", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "lineage index" in result.output
    store = OxigraphStore(str(data / "store"))
    try:
        assert opened(store).state == "complete"
        assert compare_on(store) >= 4
        for e, rows_before in before.items():
            assert _plain(store, questions.get("downstream").text({"source": e})) == rows_before
    finally:
        store.close()


def test_reindex_refuses_a_store_that_keeps_none(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from provml.cli import main

    result = CliRunner().invoke(main, ["reindex", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code != 0
    assert "no embedded store" in result.output


@pytest.mark.integration
def test_on_an_oxigraph_server_with_two_managers(scenario: Scenario, tmp_path: Path) -> None:
    """Two managers on one Oxigraph server, their batches interleaved and out of order:
    the questions over HTTP read the index and give the walk's rows."""
    server = start_oxigraph(tmp_path)
    try:
        stores = [open_store(server.store_url) for _ in range(2)]
        managers = [Manager(s) for s in stores]
        batches = _batches(scenario)
        random.Random(7).shuffle(batches)
        for i, batch in enumerate(batches):
            managers[i % 2].apply(batch)
        assert compare_on(stores[0]) >= 4
        for s in stores:
            s.close()
    finally:
        server.stop()


def test_an_edge_from_a_blank_node_drops_the_mark() -> None:
    """provml names every node it writes; should a blank node ever get an edge, the
    index can no longer speak for the store, and the questions walk."""
    g = Graph()
    raw = _n("raw", 0)
    g.model(_n("model", 0), [raw], uses=0, metric=False)
    store = fresh()
    index = opened(store)
    _write_in_order(store, index, [g.quads])
    assert index.state == "complete"
    blank = pyoxigraph.BlankNode()
    edge = Quad(blank, NamedNode(PROV + "wasDerivedFrom"), raw, pyoxigraph.DefaultGraph())
    _write_in_order(store, index, [[edge]])
    assert index.state == "missing"
    assert not bool(store.query(lineage_index.IS_MARKED))
    got = answers(store, [raw])
    assert got[("indexed", "downstream", raw.value)] == [False]
    same_rows(got, walked(store._store, [raw]))


def test_a_manager_starts_before_its_store_is_reachable() -> None:
    """Nothing connects to a SPARQL store before a request: the index's state is asked
    for at the first write, not when the manager is made."""
    store = open_store("oxigraph+http://127.0.0.1:9")  # nothing listens there
    manager = Manager(store)
    assert manager.lineage.state == "unknown"
