"""A query evaluated by a worker process answers exactly as in the server's process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest

from manager.store.oxigraph import OxigraphStore
from provml.core.errors import ResultTooLarge
from query.limits import Limits, Runner

EX = "http://ex/"
QUERIES = [
    # duplicates with a blank node: a set would drop them, and the row limit with them
    "CONSTRUCT { ?s <http://ex/q> 1 } WHERE { ?s <http://ex/p> ?o } ORDER BY ?s",
    "DESCRIBE <http://ex/s1> <http://ex/s3>",
    "SELECT ?s ?o (LANG(?l) AS ?lang) WHERE { ?s <http://ex/p> ?o "
    "OPTIONAL { ?s <http://ex/l> ?l } } ORDER BY ?s ?o",
    "ASK { _:x <http://ex/p> ?o }",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphStore]:
    st = OxigraphStore(str(tmp_path_factory.mktemp("workers") / "store"))
    p, label = ox.NamedNode(EX + "p"), ox.NamedNode(EX + "l")
    quads = [ox.Quad(ox.BlankNode("b1"), p, ox.Literal(str(i))) for i in range(5)]
    quads += [ox.Quad(ox.NamedNode(EX + f"s{i}"), p, ox.Literal(str(i))) for i in range(5)]
    quads.append(ox.Quad(ox.NamedNode(EX + "s1"), label, ox.Literal("a\nb", language="en")))
    st.add(quads)
    yield st
    st.close()


def answer(store: OxigraphStore, sparql: str, workers: int, max_rows: int = 100) -> Any:
    runner = Runner(Limits(timeout=20, max_rows=max_rows, workers=workers, memory=1 << 30))

    def work(gs: Any) -> Any:
        res = gs.query(sparql)
        if isinstance(res, ox.QueryBoolean):
            return bool(res)
        return [str(r) if res.graph else tuple(map(str, r)) for r in res]

    try:
        return runner.run(store, work)
    finally:
        runner.close()


@pytest.mark.parametrize("sparql", QUERIES)
def test_a_worker_answers_as_the_server_does(store: OxigraphStore, sparql: str) -> None:
    assert answer(store, sparql, workers=1) == answer(store, sparql, workers=0)


def test_the_row_limit_holds_in_a_worker(store: OxigraphStore) -> None:
    for workers in (0, 1):
        with pytest.raises(ResultTooLarge):
            answer(store, QUERIES[0], workers, max_rows=5)


def test_a_write_is_seen_by_the_next_query_in_a_worker(tmp_path: Path) -> None:
    st = OxigraphStore(str(tmp_path / "store"))
    runner = Runner(Limits(timeout=20, workers=1, memory=1 << 30))
    count = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    try:
        for i in range(3):
            st.add([ox.Quad(ox.NamedNode(f"{EX}n{i}"), ox.NamedNode(EX + "p"), ox.Literal(i))])
            n = runner.run(st, lambda gs: [int(r[0].value) for r in gs.query(count)])
            assert n == [i + 1]
    finally:
        runner.close()
        st.close()
