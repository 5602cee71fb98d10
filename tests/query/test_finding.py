"""Finding things as the tables print them (issue [8], item 12): unique hash prefixes,
one parameter name per meaning, a ``runs`` question, pages with a next link, and the
CLI on a data directory or a local file."""

from __future__ import annotations

import gc
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.cli import main
from provml.core.resolve import resolve_batch
from provml.core.wire import parse_batch
from provml.offline import expand, read_lines
from provml.server import build_app
from tests.query.scenario import Scenario, build


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Scenario, Path]]:
    """The question scenario in an embedded store on disk (a data directory)."""
    tmp = tmp_path_factory.mktemp("finding")
    scenario = build(tmp)
    store = OxigraphStore(str(tmp / "data" / "store"))
    manager = Manager(store)
    for f in expand([str(scenario.logs)]):
        for line in read_lines(f):
            manager.apply(resolve_batch(parse_batch(line.body)))
    store.close()
    del manager, store  # the store's lock goes with the last reference to it
    gc.collect()
    # the CLI opens its own copy: a query app keeps the other one open for the test run
    shutil.copytree(tmp / "data", tmp / "cli-data")
    yield scenario, tmp / "data"


@pytest.fixture(scope="module")
def client(world: tuple[Scenario, Path]) -> Iterator[object]:
    store = OxigraphStore(str(world[1] / "store"))
    yield build_app(["query"], store=store).test_client()
    store.close()


def rows(resp: object) -> list[dict[str, str]]:
    bindings = resp.json["results"]["bindings"]  # type: ignore[attr-defined]
    return [{k: v["value"] for k, v in b.items()} for b in bindings]


def test_a_unique_prefix_of_eight_digits_names_the_data(
    world: tuple[Scenario, Path], client: object
) -> None:
    s, _ = world
    full = rows(client.get("/api/v1/questions/training-data", query_string={"model": s.sha["m2"]}))
    for ref in (s.sha["m2"][:8], "sha256:" + s.sha["m2"][:10].upper()):
        resp = client.get("/api/v1/questions/training-data", query_string={"model": ref})
        assert resp.status_code == 200 and rows(resp) == full
    resp = client.get(f"/api/v1/models/{s.sha['m4'][:9]}")
    assert resp.status_code == 200 and resp.json["sha256"] == s.sha["m4"]
    resp = client.get(f"/api/v1/datasets/{s.sha['v2'][:8]}")
    assert resp.status_code == 200 and resp.json["sha256"] == s.sha["v2"]
    resp = client.get("/api/v1/export", query_string={"scope": "lineage", "id": s.sha["m4"][:8]})
    assert resp.status_code == 200 and s.sha["m4"] in resp.get_data(as_text=True)
    # a prefix nothing has: 404 saying where hashes come from
    absent = next(p for p in ("00000000", "ffffffff") if not any(
        h.startswith(p) for h in s.sha.values()))  # fmt: skip
    resp = client.get("/api/v1/questions/was-used", query_string={"source": absent})
    assert resp.status_code == 404 and "sha256 column" in resp.json["message"]


def test_an_id_of_nothing_or_of_another_kind_is_said_not_answered_empty(
    world: tuple[Scenario, Path], client: object
) -> None:
    """An empty answer would read as "no lineage": a dataset's hash given as a model, a
    run given as a training, an id or a workflow that names nothing are errors."""
    s, _ = world
    q = "/api/v1/questions/"
    resp = client.get(q + "training-data", query_string={"model": s.sha["v2"]})
    assert resp.status_code == 400
    assert "is a dataset, not a model" in resp.json["message"]
    assert "`provml ask models`" in resp.json["message"]
    resp = client.get(q + "run-metrics", query_string={"training": s.iri["m1-run"]})
    assert resp.status_code == 400
    assert "is a workflow run, not a training execution" in resp.json["message"]
    resp = client.get(q + "training-data", query_string={"model": "e" * 64})
    assert resp.status_code == 404 and "names nothing in the graph" in resp.json["message"]
    resp = client.get(q + "runs-history", query_string={"workflow": "no-such-workflow"})
    assert resp.status_code == 404 and "no workflow named" in resp.json["message"]
    # of the right kind, with nothing to say: an empty answer is the answer
    resp = client.get(q + "run-metrics", query_string={"training": s.iri["m1-train"]})
    assert resp.status_code == 200
    resp = client.get(q + "training-data", query_string={"model": s.sha["m2"]})
    assert resp.status_code == 200 and rows(resp)


def test_an_ambiguous_prefix_lists_the_candidates() -> None:
    from provml.core.errors import ValidationError
    from provml.core.hashprefix import expand as expand_prefix

    store = OxigraphStore(None)
    a, b = "abcdef12" + "0" * 56, "abcdef12" + "1" * 56
    store.update(
        f'INSERT DATA {{ <https://provml.dev/id/data/sha256/{a}> provml:sha256 "{a}" . '
        f'<https://provml.dev/id/data/sha256/{b}> provml:sha256 "{b}" }}'
    )
    with pytest.raises(ValidationError) as err:
        expand_prefix(store, "abcdef12")
    assert "ambiguous" in err.value.message and err.value.details == [a, b]
    assert expand_prefix(store, "abcdef120") == a


def test_runs_lists_recent_runs_with_their_ids(
    world: tuple[Scenario, Path], client: object
) -> None:
    s, _ = world
    runs = rows(client.get("/api/v1/questions/runs"))
    assert {r["workflow"] for r in runs} >= {"curation", "credit-model", "ensemble"}
    starts = [r["started"] for r in runs]
    assert starts == sorted(starts, reverse=True)  # newest first
    assert {r["status"] for r in runs} <= {"finished", "failed", "running"}
    assert "failed" in {r["status"] for r in runs}  # the scenario has a failed run
    assert s.iri["m2-run"] in {r["run"] for r in runs}
    assert all(r.get("user") for r in runs)


def test_pages_and_the_next_link(client: object) -> None:
    everything = rows(client.get("/api/v1/questions/runs"))
    assert len(everything) > 3
    first = client.get("/api/v1/questions/runs", query_string={"limit": 2})
    assert rows(first) == everything[:2]
    link = first.headers["Link"]
    assert re.fullmatch(
        r'<http://localhost/api/v1/questions/runs\?limit=2&offset=2>; rel="next"', link
    )
    second = client.get(link[1 : link.index(">")])
    assert rows(second) == everything[2:4]
    last = client.get("/api/v1/questions/runs", query_string={"offset": len(everything) - 1})
    assert rows(last) == everything[-1:] and "Link" not in last.headers
    for bad in ({"limit": "0"}, {"limit": "ten"}, {"offset": "-1"}, {"limit": "100001"}):
        resp = client.get("/api/v1/questions/runs", query_string=bad)
        assert resp.status_code == 400 and "whole number" in resp.json["message"]


def test_one_parameter_name_per_meaning(world: tuple[Scenario, Path], client: object) -> None:
    s, _ = world
    resp = client.get("/api/v1/questions/run-metrics", query_string={"training": s.iri["m2-train"]})
    assert resp.status_code == 200 and rows(resp)
    resp = client.get("/api/v1/questions/run-metrics", query_string={"run": s.iri["m2-train"]})
    assert resp.status_code == 400 and "it takes training, limit, offset" in resp.json["message"]
    resp = client.get("/api/v1/questions/stage-resources", query_string={"run": s.iri["m2-run"]})
    assert resp.status_code == 200 and rows(resp)
    described = {q["name"]: q for q in client.get("/api/v1/questions").json["questions"]}
    assert described["best-epoch"]["params"][0]["name"] == "training"
    assert "runs" in described["stage-resources"]["params"][0]["help"]  # where ids come from


def test_cli_on_a_data_directory_and_local_files(world: tuple[Scenario, Path]) -> None:
    s, data = world
    data = data.parent / "cli-data"
    runner = CliRunner()
    model_file = s.logs.parent / "m2.pkl"
    assert model_file.exists()
    result = runner.invoke(
        main, ["ask", "training-data", f"model={model_file}", "--data-dir", str(data), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert {b["model"]["value"] for b in json.loads(result.output)["results"]["bindings"]} == {
        s.iri["m2"]
    }
    result = runner.invoke(main, ["ask", "runs", "--data-dir", str(data), "--limit", "1"])
    assert result.exit_code == 0 and "more with --offset 1" in result.stderr
    result = runner.invoke(main, ["model", str(model_file), "--data-dir", str(data), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["sha256"] == s.sha["m2"]
    result = runner.invoke(main, ["dataset", s.sha["v2"][:8], "--data-dir", str(data)])
    assert result.exit_code == 0 and s.sha["v2"][:12] in result.output
    result = runner.invoke(main, ["model", "0" * 64, "--data-dir", str(data)])
    assert result.exit_code == 1 and "no model" in result.output and "ask models" in result.output
    # a lineage export names the model by its local file too (the failed command's
    # traceback, which the runner keeps, holds the store's lock until collected)
    del result
    gc.collect()
    out = data.parent / "m2.ttl"
    result = runner.invoke(
        main, ["export", "--model", str(model_file), "--data-dir", str(data), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert s.sha["m2"] in out.read_text()


def test_the_cli_lists_an_ambiguous_prefixs_candidates(tmp_path: Path) -> None:
    store = OxigraphStore(str(tmp_path / "data" / "store"))
    a, b = "abcdef12" + "0" * 56, "abcdef12" + "1" * 56
    store.update(
        f"INSERT DATA {{ <https://provml.dev/id/data/sha256/{a}> a provml:Model ; provml:sha256 "
        f'"{a}" . <https://provml.dev/id/data/sha256/{b}> a provml:Model ; provml:sha256 "{b}" }}'
    )
    store.close()
    del store
    gc.collect()
    result = CliRunner().invoke(main, ["model", "abcdef12", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert "ambiguous" in result.output and a in result.output and b in result.output
