"""The ontology parses, is aligned to PROV-O, and declares every term the mapping emits."""

from __future__ import annotations

import pytest
import rdflib
from rdflib.namespace import OWL, RDF, RDFS

from provml.core.mapping import batch_to_quads
from provml.core.resolve import resolve_batch
from provml.core.vocab import PROV_NS, PROVML_NS, RDF_NS, RDFS_NS, XSD_NS, ontology_turtle
from provml.core.wire import validate_batch
from tests.conftest import SHARED, full_records, make_batch

PROV_O = SHARED / "corpus" / "provtoolbox" / "sparql-query" / "prov-o.ttl"


@pytest.fixture(scope="module")
def ontology() -> rdflib.Graph:
    g = rdflib.Graph()
    g.parse(data=ontology_turtle(), format="turtle")
    return g


@pytest.fixture(scope="module")
def prov_o() -> rdflib.Graph:
    if not PROV_O.exists():
        pytest.skip(f"{PROV_O} is not there (../shared/corpus beside the checkout)")
    g = rdflib.Graph()
    g.parse(PROV_O, format="turtle")
    return g


def declared(g: rdflib.Graph) -> set[str]:
    return {
        str(s)
        for s, o in g.subject_objects(RDF.type)
        if o in (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, RDF.Property)
    }


def emitted_terms() -> set[str]:
    quads = batch_to_quads(resolve_batch(validate_batch(make_batch(full_records()))))
    terms = {q.predicate.value for q in quads}
    terms |= {q.object.value for q in quads if q.predicate.value == RDF_NS + "type"}
    terms |= {q.object.datatype.value for q in quads if hasattr(q.object, "datatype")}
    return terms


def test_ontology_parses_and_declares_the_required_terms(ontology: rdflib.Graph) -> None:
    names = {t.removeprefix(PROVML_NS) for t in declared(ontology) if t.startswith(PROVML_NS)}
    required = {
        "Study", "LearningExperiment", "LearningStage", "Training", "Validation",
        "Evaluation", "LearningStageSection", "LearningStageExecution",
        "LearningHyperparameter", "LearningHyperparameterValue", "ModelHyperparameter",
        "ModelHyperparameterValue", "LearningData", "FeatureSetData", "Model",
        "ModelEvaluation", "Algorithm", "LearningTask", "Persona", "Workflow",
        "DataTransformation", "Attribute", "DataStore", "WorkflowExecution",
        "DataTransformationExecution", "AttributeValue", "DataStoreInstance",
        "InferenceExecution", "Prediction",
    }  # fmt: skip
    assert required <= names


def test_every_emitted_term_is_declared(ontology: rdflib.Graph, prov_o: rdflib.Graph) -> None:
    known = declared(ontology) | declared(prov_o)
    allowed_elsewhere = {RDF_NS + "type", RDF_NS + "JSON"}
    missing = {
        t
        for t in emitted_terms()
        if t not in known and t not in allowed_elsewhere and not t.startswith(XSD_NS)
    }
    assert not missing


def test_every_provml_class_and_property_is_aligned_to_prov(
    ontology: rdflib.Graph, prov_o: rdflib.Graph
) -> None:
    prov_terms = declared(prov_o)
    for cls in ontology.subjects(RDF.type, OWL.Class):
        supers = set(ontology.transitive_objects(cls, RDFS.subClassOf)) - {cls}
        assert any(str(s).startswith(PROV_NS) for s in supers), f"{cls} not under a PROV class"
        for s in supers:
            if str(s).startswith(PROV_NS):
                assert str(s) in prov_terms, f"{s} is not a PROV-O term"
    for kind in (OWL.ObjectProperty, OWL.DatatypeProperty):
        for prop in ontology.subjects(RDF.type, kind):
            anchors = set(ontology.objects(prop, RDFS.domain)) | set(
                ontology.objects(prop, RDFS.subPropertyOf)
            )
            assert anchors, f"{prop} has neither a domain nor a super-property"
            for a in anchors:
                if str(a).startswith(PROV_NS):
                    assert str(a) in prov_terms, f"{a} is not a PROV-O term"
    assert RDFS_NS  # the ontology uses rdfs:subPropertyOf rdfs:label for provml:name
