"""yProv4ML's PROV-JSON (shared/corpus/hpci-provenancecards) typed into provml's classes
at import: its models, datasets and metrics answer the named questions, and nothing is
connected that the documents did not connect."""

from __future__ import annotations

import json

import pyoxigraph
import pytest
from pyoxigraph import DefaultGraph, Literal, NamedNode, Quad

from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.vocab import PROVML, RDF
from provml.interop import documents
from provml.interop.yprov4ml import typed
from query import questions
from tests.conftest import CORPUS

HPCI = CORPUS / "hpci-provenancecards" / "pipeline2_output" / "jsons"


def ask(store: OxigraphStore, name: str, **params: str) -> list[dict[str, str]]:
    result = store.query(questions.get(name).text(params))
    assert isinstance(result, pyoxigraph.QuerySolutions)
    return [{v.value: r[v].value for v in result.variables if r[v] is not None} for r in result]


@pytest.fixture(scope="module")
def store() -> OxigraphStore:
    files = sorted(HPCI.rglob("*.json"))
    if len(files) != 4:
        pytest.skip("the hpci-provenancecards corpus is not here")
    st = OxigraphStore(None)
    for f in files:
        Manager(st).import_document(f.read_bytes(), "provjson", None)
    return st


def test_models_metrics_and_their_counts(store: OxigraphStore) -> None:
    def count(cls: NamedNode) -> int:
        (row,) = store.query(f"SELECT (COUNT(DISTINCT ?e) AS ?n) WHERE {{ ?e a {cls} }}")
        return int(row[0].value)

    raw = [json.loads(f.read_text()) for f in sorted(HPCI.rglob("*.json"))]
    typed_as = [str(e.get("prov:type")) for d in raw for e in d.get("entity", {}).values()]
    assert count(PROVML.Model) == typed_as.count("provml:Model") == 8
    assert count(PROVML.ModelEvaluation) == typed_as.count("provml:Metric") == 96
    assert count(PROVML.LearningData) == 0  # these documents type no dataset


def test_models_answers_with_the_activity_that_made_each(store: OxigraphStore) -> None:
    rows = ask(store, "models")
    made = {(r["model"].rsplit("/", 2)[-2], r["training"].rsplit("/", 1)[-1]) for r in rows}
    assert made == {
        ("dlesym.pt", "finetune"),
        ("Original_dlesym.pt", "finetune"),
        ("dlesym.pt", "inferences_GR0_0"),
        ("Original_dlesym.pt", "inferences_GR0_0"),
    }
    assert all("run" not in r and "sha256" not in r for r in rows)  # no run, no content hash


def test_training_data_and_run_metrics_answer_what_is_there(store: OxigraphStore) -> None:
    """The fine-tuned model's generating activity used nothing and is typed no training
    in the document: training-data is empty for it (a 200, not a wrong row); metric files
    carry no values, so run-metrics has none either."""
    (model,) = [r["model"] for r in ask(store, "models")
                if r["model"].endswith("/dlesym.pt/finetune")]  # fmt: skip
    assert ask(store, "training-data", model=model) == []
    (finetune,) = [r["training"] for r in ask(store, "models")
                   if r["model"] == model]  # fmt: skip
    assert ask(store, "run-metrics", training=finetune) == []
    text = f"SELECT DISTINCT ?n WHERE {{ ?m a {PROVML.ModelEvaluation} ; {PROVML.name} ?n }}"
    names = {r[0].value for r in store.query(text)}
    assert {"cpu_usage", "gpu_temperature", "memory_usage"} <= names
    assert not any("/" in n for n in names)


def test_typing_connects_nothing() -> None:
    """Only rdf:type and a metric's name are added: no edge between two nodes, and no
    node the document did not have."""
    for f in sorted(HPCI.rglob("*.json")):
        doc = documents.parse_document(f.read_bytes(), "provjson")
        before = {q.subject for q in doc.quads if q.predicate != RDF.type}
        added = typed([q for q in doc.quads], doc.prefixes)
        assert {q.predicate for q in typed(doc.quads, doc.prefixes)} <= {RDF.type, PROVML.name}
        assert {q.subject for q in added} <= before
        assert not [q for q in added if q.predicate == RDF.type and q.object not in (
            PROVML.Model, PROVML.Data, PROVML.LearningData, PROVML.ModelEvaluation)]  # fmt: skip


def test_other_documents_are_not_typed() -> None:
    """A document that is not yProv4ML's keeps a ``provml:Model`` string as it is."""
    quads = [Quad(NamedNode("http://e.org/m"), RDF.type, Literal("provml:Model"), DefaultGraph())]
    assert typed(quads, {"ex": "http://e.org/"}) == []
    assert typed(quads, {"yprov": "https://github.com/HPCI-Lab/yProv4ML"}) == [
        Quad(NamedNode("http://e.org/m"), RDF.type, PROVML.Model, DefaultGraph()),
        Quad(NamedNode("http://e.org/m"), RDF.type, PROVML.Data, DefaultGraph()),
    ]
