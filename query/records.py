"""Model and dataset records: what a user browses, assembled from named questions.

Each record is a JSON object built from a few small queries (``query/queries``), each
bound to the one IRI asked about, so a record costs a handful of index lookups.
"""

from __future__ import annotations

from typing import Any

import pyoxigraph

from manager.store import Store
from provml.core.errors import NotFound
from provml.core.hashprefix import expand
from query import questions
from query.limits import Guarded, GuardedStore


def rows(store: Store | GuardedStore, name: str, **params: str) -> list[dict[str, str]]:
    """The rows of a named question as plain strings (absent values left out)."""
    question = questions.get(name, store.dialect)
    result = store.query(questions.chosen(store, question, params).text(params))
    assert isinstance(result, (pyoxigraph.QuerySolutions, Guarded))
    variables = result.variables
    return [
        {v.value: term.value for v in variables if (term := row[v]) is not None} for row in result
    ]


def _paths(rows: list[dict[str, str]]) -> list[str]:
    """Every place in the rows' ``paths`` (one per line: a path may hold spaces)."""
    return _each(rows, "paths")


def _each(rows: list[dict[str, str]], key: str) -> list[str]:
    """Every distinct value of ``key`` in the rows (a GROUP_CONCAT's values one per line)."""
    return sorted({p for r in rows for p in r.get(key, "").split("\n") if p})


#: what a run called a model where it saved or loaded it (on that generation or use)
MODEL_LABELS = ("name", "version", "description", "framework", "frameworkVersion", "algorithm")


def _drop(row: dict[str, str], *keys: str) -> dict[str, str]:
    return {k: v for k, v in row.items() if k not in keys}


def model_record(store: Store | GuardedStore, model: str) -> dict[str, Any]:
    """Everything about one model version (``model``: its IRI, its file's SHA-256 or a
    unique prefix of it)."""
    model = expand(store, model)
    runs = rows(store, "model-record", model=model)
    if not runs:
        raise NotFound(
            f"no model {model!r} in the graph (`provml ask models` lists the models, with "
            "their hashes)"
        )
    first = runs[0]
    uses = rows(store, "data-uses", data=model)
    identity: dict[str, Any] = {k: first[k] for k in ("model", "sha256") if k in first}
    # the labels every run gave it, one string each (", " between different ones); each
    # training's own are in its entry
    for key in MODEL_LABELS:
        if values := _each(uses, key):
            identity[key] = ", ".join(values)
    identity["paths"] = _each(uses, "path")
    made = {u["execution"]: u for u in uses if u["how"] == "generated"}
    hyper: dict[str, dict[str, str]] = {}
    for r in rows(store, "hyperparameters", model=model):
        hyper.setdefault(r["training"], {})[r["name"]] = r["value"]
    data: dict[str, list[dict[str, str]]] = {}
    for r in rows(store, "training-data", model=model):
        data.setdefault(r["training"], []).append(_drop(r, "model", "training", "run"))
    trainings = [
        {
            **{
                k: r[k]
                for k in ("training", "run", "workflow", "started", "ended", "gitCommit", "user")
                if k in r
            },
            **{
                k: v
                for k, v in made.get(r.get("training", ""), {}).items()
                if k in ("path", "host", *MODEL_LABELS)
            },
            "hyperparameters": hyper.get(r.get("training", ""), {}),
            "data": data.get(r.get("training", ""), []),
        }
        for r in runs
        if "training" in r
    ]
    return {
        **identity,
        "trainings": trainings,
        "evaluations": [_drop(r, "model") for r in rows(store, "model-evaluations", model=model)],
        "derivedFrom": [_drop(r, "model") for r in rows(store, "derived-from", model=model)],
    }


def dataset_record(store: Store | GuardedStore, dataset: str) -> dict[str, Any]:
    """One dataset version and its siblings (``dataset``: its IRI, its content's SHA-256
    or a unique prefix of it)."""
    dataset = expand(store, dataset)
    versions = rows(store, "dataset-record", dataset=dataset)
    if not versions:
        raise NotFound(
            f"no dataset {dataset!r} in the graph (the sha256 column of `provml ask "
            "training-data` and the model records name the data a model used)"
        )
    this = versions[0]["dataset"]
    current = next((v for v in versions if v["version"] == this), versions[0])
    keep = ("sha256", "source", "license")
    return {
        "dataset": this,
        **{k: current[k] for k in keep if k in current},
        **_labels(current),
        "paths": _paths([current]),
        "versions": [
            {**_drop(v, "dataset", "labels", "splits"), **_labels(v), "paths": _paths([v])}
            for v in versions
        ],
        "derivedFrom": [
            _drop(r, "dataset") for r in rows(store, "dataset-sources", dataset=dataset)
        ],
        "usedByModels": [
            _drop(r, "dataset") for r in rows(store, "dataset-models", dataset=dataset)
        ],
    }


def _labels(row: dict[str, str]) -> dict[str, str]:
    """A version's labels and splits as the runs that used or made it gave them (``label``,
    ``split``: one string each, ", " between different ones)."""
    out = {}
    for key, name in (("labels", "label"), ("splits", "split")):
        if values := _each([row], key):
            out[name] = ", ".join(values)
    return out
