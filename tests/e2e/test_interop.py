"""PROV import and export over real HTTP: `provml import` / `provml export` against a
`provml serve` process, with documents from shared/corpus and a captured workflow."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import pytest
import requests
from prov.model import ProvDocument

from provml.core.ids import content_iri
from provml.interop import documents as interop
from tests.conftest import Server, provml_cmd
from tests.e2e.test_end_to_end import run_workflow

pytestmark = pytest.mark.integration
from tests.conftest import CORPUS  # noqa: E402

TAVERNA = CORPUS / "provbench-wf4ever/Taverna_repository/workflow_80_version_2/run_2"
PRIMER = CORPUS / "provtoolbox/validation/primer.provn"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(provml_cmd(*args), capture_output=True, text=True, timeout=300)


def count(server: Server) -> int:
    return int(server.sparql("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")[0]["n"])


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared/corpus is not next to the checkout")
def test_import_corpus_documents_over_http(server: Server) -> None:
    taverna = str(TAVERNA / "workflowrun.prov.ttl")
    other_run = str(TAVERNA.parent / "run_1" / "workflowrun.prov.ttl")
    refused = cli("import", "--url", server.url, "--quiet", "--base-iri",
                  "http://example.org/taverna/", taverna, other_run)  # fmt: skip
    assert refused.returncode == 2 and "same base" in refused.stderr
    assert count(server) == 0
    # {name}: both files are called workflowrun.prov.ttl, so the second is refused
    same = cli("import", "--url", server.url, "--quiet", "--base-iri",
               "http://example.org/taverna/{name}/", taverna, other_run)  # fmt: skip
    assert same.returncode == 1 and "base of another file" in same.stderr
    assert "triples (turtle)" in same.stdout  # the first file went in

    base = "http://example.org/runs/{sha256}/"
    done = cli("import", "--url", server.url, "--quiet", "--base-iri", base, taverna,
               other_run, str(PRIMER))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "triples (turtle)" in done.stdout and "triples (provn)" in done.stdout
    n = count(server)
    # three imports of two runs (one under {name} above), each export activity with its
    # own start
    starts = server.sparql("""SELECT ?x (COUNT(?t) AS ?n) WHERE { ?x prov:startedAtTime ?t .
        FILTER(STRENDS(STR(?x), '#taverna-prov-export')) } GROUP BY ?x""")
    assert sorted(int(r["n"]) for r in starts) == [1, 1, 1]
    # the Taverna run's output traces back to its input through the imported steps
    rows = server.sparql("""PREFIX wfprov: <http://purl.org/wf4ever/wfprov#>
        SELECT ?in WHERE { ?run a wfprov:WorkflowRun ; wfprov:usedInput ?in .
          ?out wfprov:wasOutputFrom ?run . ?out (prov:wasGeneratedBy/prov:used)+ ?in }""")
    assert rows
    # importing again adds nothing; a malformed document changes nothing
    again = cli("import", "--url", server.url, "--quiet", "--base-iri", base, taverna)
    assert again.returncode == 0 and count(server) == n
    assert again.returncode == 0
    bad = CORPUS / "trungdong-prov/malformed/bad_record_content.json"
    out = cli("import", "--url", server.url, "--quiet", str(bad))
    assert out.returncode == 1 and "PROV-JSON" in out.stderr
    assert count(server) == n
    # the API says what is wrong, as JSON
    resp = requests.post(server.url + "/api/v1/import", data=b"{not json", timeout=30,
                         params={"format": "provjson"})  # fmt: skip
    assert resp.status_code == 400 and "PROV-JSON" in resp.json()["message"]
    resp = requests.post(server.url + "/api/v1/import", data=b"x", timeout=30)
    assert resp.status_code == 400 and "format" in resp.json()["message"]


def test_export_a_captured_model_lineage_in_every_format(server: Server, tmp_path: Path) -> None:
    run = run_workflow(tmp_path / "w", "http", server.url)
    model = content_iri(run["model"])
    rdf_formats = {"turtle": "turtle", "ntriples": "nt", "trig": "trig", "jsonld": "json-ld"}
    for fmt in ("provn", "provjson", "provxml", *rdf_formats):
        out = tmp_path / f"lineage.{fmt}"
        result = cli("export", "--url", server.url, "--model", run["model"], "--format", fmt,
                     "-o", str(out))  # fmt: skip
        assert result.returncode == 0, result.stderr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt in rdf_formats:
                doc = ProvDocument.deserialize(str(out), format="rdf", rdf_format=rdf_formats[fmt])
            else:
                prov_name = interop.FORMATS[fmt].prov or ""
                doc = ProvDocument.deserialize(str(out), format=prov_name)
        ids = {str(r.identifier.uri) for r in doc.get_records() if r.identifier is not None}
        text = out.read_text()
        # the model, the training that made it, the clean data and the cleaning step
        assert model in ids or model in text, fmt
        assert content_iri(run["clean"]) in text or content_iri(run["clean"]) in ids, fmt
        assert "lr" in text and "drop_na" in text, fmt  # hyperparameters, curation params
        assert run["prediction"] not in text, fmt  # downstream of the model: not lineage
        if fmt not in rdf_formats:
            # the plan's roles (parameters, inputs, outputs) are kept, as entities with
            # their types; only the document's own prefixes; nothing dropped on the way
            roles = [
                r for r in doc.get_records()
                if r.identifier is not None and "/plan/" in r.identifier.uri
                and any(f"/{kind}/" in r.identifier.uri for kind in ("param", "in", "out"))
            ]  # fmt: skip
            assert any(r.identifier.uri.endswith("/param/lr") for r in roles), fmt
            assert all(
                "Role" in str(r.get_asserted_types()) and r.get_attribute("provml:name")
                for r in roles
            ), fmt
            assert "brickschema" not in text and "csvw" not in text, fmt
            assert "not converted" not in result.stderr, fmt

    # a run and a workflow: every task, with the prediction
    (run_row,) = server.sparql(
        "SELECT ?run WHERE { ?run a provml:WorkflowExecution ; provml:name 'credit-scoring' }"
    )
    for args in (("--workflow", "credit-scoring"), ("--run", run_row["run"])):
        result = cli("export", "--url", server.url, *args, "--format", "provjson")
        assert result.returncode == 0, result.stderr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            doc = ProvDocument.deserialize(content=result.stdout, format="json")
        ids = {str(r.identifier.uri) for r in doc.get_records() if r.identifier is not None}
        assert run["prediction"] in ids and content_iri(run["model"]) in ids
        assert "epoch" in result.stdout
    missing = cli("export", "--url", server.url, "--model", "0" * 64)
    assert missing.returncode == 1 and "nothing in the graph" in missing.stderr
    resp = requests.get(server.url + "/api/v1/export", params={"format": "csv"}, timeout=30)
    assert resp.status_code == 400 and "unknown format" in resp.json()["message"]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared/corpus is not next to the checkout")
def test_export_an_imported_taverna_run_as_prov(server: Server, tmp_path: Path) -> None:
    """A Taverna run imported without a base exports by itself as PROV-N: its PROV
    records, and on stderr / in a header how many statements had no place (before:
    refused, 422); --strict refuses as before."""
    done = cli("import", "--url", server.url, "--quiet", str(TAVERNA / "workflowrun.prov.ttl"))
    assert done.returncode == 0, done.stderr
    doc_id = done.stdout.split("document ")[-1].strip()
    out = tmp_path / "run.provn"
    result = cli("export", "--url", server.url, "--document", doc_id, "--format", "provn",
                 "-o", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "statements cannot be expressed in PROV-N" in result.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doc = ProvDocument.deserialize(str(out), format="provn")
    labels = {str(v) for r in doc.get_records() for k, v in r.attributes if "label" in str(k)}
    assert any(label.startswith("Processor execution Discover_entities") for label in labels)
    params = {"scope": "document", "id": doc_id, "format": "provjson"}
    resp = requests.get(server.url + "/api/v1/export", params=params, timeout=60)
    assert resp.status_code == 200 and int(resp.headers["Provml-Unexpressed"]) > 0
    assert resp.headers["Provml-Unexpressed-Sample"].startswith("<")
    strict = cli("export", "--url", server.url, "--document", doc_id, "--format", "provn",
                 "--strict")  # fmt: skip
    assert strict.returncode == 1 and "would leave out" in strict.stderr
