"""RO-Crate through the command line and real servers: a workflow captured with
capture_lib, exported with ``provml export --format ro-crate``, imported with ``provml
import --format ro-crate`` into a fresh server: the named questions give the same
lineage there; importing again adds nothing; a bad crate changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import capture_lib as cl
from provml.cli import main
from provml.client import ProvmlClient
from provml.core import config
from provml.server import build_app
from tests.cli.conftest import LiveServer

pytest.importorskip("rocrate")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in config.ALL:
        monkeypatch.delenv(setting.name, raising=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="provml")


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    a = LiveServer(build_app(store="memory:", queue_dir=str(tmp_path / "qa")))
    b = LiveServer(build_app(store="memory:", queue_dir=str(tmp_path / "qb")))
    yield a, b
    a.stop()
    b.stop()


def capture(tmp: Path) -> dict[str, str]:
    """Curation (raw → clean) and training (clean → model, with an epoch's metric)."""
    raw, clean, model = tmp / "raw.csv", tmp / "clean.csv", tmp / "model.pkl"
    raw.write_text("id,x\n1,2\n2,\n")
    clean.write_text("id,x\n1,2\n")
    model.write_bytes(b"a model")
    cl.init(mode="disk", path=str(tmp / "logs"), user="dana")
    out: dict[str, str] = {}
    with cl.workflow("curation") as wf:
        out["curation"] = wf.iri
        with wf.task("clean", used={"raw": cl.dataset(raw, license="CC-BY-4.0")}) as t:
            t.generated(clean=cl.dataset(clean, version="1"))
    with cl.workflow("training") as wf:
        out["training"] = wf.iri
        with wf.task("fit", stage="training", used={"data": cl.dataset(clean)},
                     params={"lr": 0.1, "layers": [4, 2]}) as t:  # fmt: skip
            with t.section("epoch", index=0) as sec:
                sec.metric("loss", 0.5)
            t.generated(model=cl.model(model, framework="sklearn"))
    out["raw"], out["model"] = cl.file(raw)["sha256"], cl.file(model)["sha256"]
    cl.flush()
    cl.shutdown()
    return out


def ask(url: str, name: str, **params: str) -> list[dict[str, str]]:
    with ProvmlClient(url) as client:
        answer = client.ask(name, params)
    return [{k: v["value"] for k, v in row.items()} for row in answer["results"]["bindings"]]


def triples(url: str) -> int:
    with ProvmlClient(url) as client:
        answer: Any = client.sparql("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    return int(answer["results"]["bindings"][0]["n"]["value"])


LINEAGE = (("training-data", "model"), ("data-derivation", "model"), ("models", None),
           ("was-used", "raw"), ("downstream", "raw"), ("workflow-consumers", None))  # fmt: skip


def answers(url: str, made: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, param in LINEAGE:
        if name == "workflow-consumers":
            params = {"workflow": "curation"}
        elif param:
            params = {"source" if param == "raw" else "model": made[param]}
        else:
            params = {}
        out[name] = sorted(json.dumps(r, sort_keys=True) for r in ask(url, name, **params))
    return out


def test_export_then_import_gives_the_same_lineage(
    tmp_path: Path, two: tuple[LiveServer, LiveServer]
) -> None:
    a, b = two
    made = capture(tmp_path)
    assert run("ingest", str(tmp_path / "logs"), "--url", a.url, "--quiet").exit_code == 0
    crates = []
    for name, target in (("curation", "curation-crate"), ("training", "training.zip")):
        out = tmp_path / target
        result = run("export", "--format", "ro-crate", "--run", made[name], "-o", str(out),
                     "--url", a.url)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "files referenced, not copied" in result.output and "by SHA-256)" in result.output
        crates.append(str(out))
    result = run("import", "--format", "ro-crate", *crates, "--url", b.url)
    assert result.exit_code == 0, result.output
    assert "1 run(s), 1 step(s)" in result.output
    before = answers(a.url, made)
    assert before["training-data"] and before["was-used"] and before["workflow-consumers"]
    assert answers(b.url, made) == before
    # the runs (who, when, status) and the metrics per epoch come back as they were
    (training,) = {r["training"] for r in ask(a.url, "models")}
    for name, params in (("runs", {}), ("run-metrics", {"training": training})):
        assert ask(b.url, name, **params) == ask(a.url, name, **params) != []
    count = triples(b.url)
    assert run("import", "--format", "ro-crate", *crates, "--url", b.url).exit_code == 0
    assert triples(b.url) == count  # idempotent


def test_a_bad_crate_is_refused_and_changes_nothing(
    tmp_path: Path, two: tuple[LiveServer, LiveServer]
) -> None:
    _, b = two
    count = triples(b.url)
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "ro-crate-metadata.json").write_text(json.dumps({"@graph": [
        {"@id": "ro-crate-metadata.json", "about": {"@id": "./"}},
        {"@id": "./", "@type": "Dataset", "mainEntity": {"@id": "wf"}},
        {"@id": "#r", "@type": "CreateAction", "instrument": {"@id": "wf"}}]}))  # fmt: skip
    result = run("import", "--format", "ro-crate", str(empty), str(broken), "--url", b.url)
    assert result.exit_code == 1
    assert "not an RO-Crate" in result.output and "no startTime or endTime" in result.output
    assert triples(b.url) == count
    # without --format ro-crate a directory is refused as before
    result = run("import", str(empty), "--url", b.url)
    assert result.exit_code == 2 and "is a directory" in result.output
    result = run("export", "--format", "ro-crate", "--url", b.url)
    assert result.exit_code == 2 and "give --run" in result.output
