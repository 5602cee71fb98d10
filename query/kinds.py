"""Why a question answered nothing, when the reason is its parameter.

An empty answer is true when the node asked about exists and is of the kind the question
is about (a model nobody trained on anything). It misleads when the id names nothing in the
graph (a typo, a prefix of the wrong hash) or names another kind of node (a dataset's hash
given as ``model``, a workflow run's IRI as ``training``): the question then looks answered,
and the user concludes "no lineage". :func:`check` is asked only after an empty first
page, so a question with rows pays nothing for it; it raises :class:`NotFound` (404) for an
id that names nothing and :class:`ValidationError` (400) for one of another kind, each
saying where ids of the right kind are listed.
"""

from __future__ import annotations

from typing import Any

from provml.core.errors import NotFound, ValidationError
from provml.core.queryable import Queryable
from provml.core.vocab import PROV, PROVML

#: parameter name → (the classes a node it names has one of, what it is, where they are)
KINDS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "model": ((PROVML.Model.value,), "a model", "`provml ask models`"),
    "dataset": ((PROVML.Data.value,), "data", "the sha256 column of `provml ask training-data`"),
    "source": ((PROV.Entity.value,), "an entity", "`provml ask data-uses`, the records"),
    "data": ((PROV.Entity.value,), "an entity", "the records and `training-data`"),
    "prediction": ((PROVML.Prediction.value,), "a prediction", "`provml ask predictions`"),
    "training": (
        (PROVML.TrainingExecution.value,),
        "a training execution",
        "the training column of `training-data`, `models` or `experiment-runs`",
    ),
    "run": (
        (PROVML.WorkflowExecution.value,),
        "a workflow run",
        "the run column of `provml ask runs`",
    ),
}

#: a class → how a message names it (the most specific of a node's classes wins)
_NAMES = {
    PROVML.Model.value: "a model",
    PROVML.Prediction.value: "a prediction",
    PROVML.LearningData.value: "a dataset",
    PROVML.Code.value: "code",
    PROVML.MissingData.value: "data that could not be read",
    PROVML.Data.value: "data",
    PROVML.TrainingExecution.value: "a training execution",
    PROVML.WorkflowExecution.value: "a workflow run",
    PROVML.LearningStageSectionExecution.value: "a section (an epoch …)",
    PROV.Activity.value: "an execution",
    PROV.Entity.value: "an entity",
    PROV.Agent.value: "an agent",
}


def check(store: Queryable, question: Any, values: dict[str, str]) -> None:
    """Raise if a parameter of ``question`` (bound as ``values``, prefixes expanded)
    names nothing, or a node of another kind than the question asks about."""
    from query.questions import bind_term  # the parameter as the question binds it

    for p in question.params:
        if p.kind == "string" and p.name == "workflow":
            _check_workflow(store, question.name, values[p.name])
        if p.kind not in ("iri", "data") or p.name not in values:
            continue
        node = bind_term(p, values[p.name]).value
        classes = _classes(store, node)
        if classes is None:
            where = KINDS[p.name][2] if p.name in KINDS else "the other questions"
            raise NotFound(
                f"{question.name}: {p.name} {values[p.name]!r} names nothing in the graph "
                f"({where} lists them)"
            )
        wanted = KINDS.get(p.name)
        if wanted is not None and not classes & set(wanted[0]):
            raise ValidationError(
                f"{question.name}: {p.name} {values[p.name]!r} is {_describe(classes)}, not "
                f"{wanted[1]} ({wanted[2]} lists them)"
            )


def _classes(store: Queryable, node: str) -> set[str] | None:
    """The classes of ``node``; None when the graph says nothing of it at all."""
    text = f"SELECT ?c WHERE {{ <{node}> a ?c }}"
    classes = {row[0].value for row in store.query(text)}
    if classes:
        return classes
    used = f"SELECT ?p WHERE {{ {{ <{node}> ?p ?o }} UNION {{ ?s ?p <{node}> }} }} LIMIT 1"
    return set() if list(store.query(used)) else None


def _describe(classes: set[str]) -> str:
    for cls, name in _NAMES.items():
        if cls in classes:
            return name
    return "a node of no kind provml knows"


def _check_workflow(store: Queryable, question: str, name: str) -> None:
    text = (
        "SELECT ?run WHERE { ?run provml:name ?name . "
        "FILTER EXISTS { ?run a provml:WorkflowExecution } } LIMIT 1"
    )
    bound = text.replace("WHERE {", f"WHERE {{ VALUES ?name {{ {_literal(name)} }}", 1)
    if not list(store.query(bound)):
        raise NotFound(
            f"{question}: no workflow named {name!r} has run (`provml ask runs` lists the "
            "workflows that did)"
        )


def _literal(text: str) -> str:
    from pyoxigraph import Literal

    return str(Literal(text.strip()))
