"""ProvLake prospective provenance: a dataflow's specification (its data
transformations, with their stages and the attributes they use and generate), with which
retrospective records are converted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provml.core.errors import ValidationError
from provml.core.wire import STAGES, json_type
from provml.interop.provlake.messages import MAX_PROBLEMS, among, is_name


@dataclass(frozen=True)
class TransformationSpec:
    """What a prospective specification declares of one data transformation."""

    parameters: frozenset[str] = frozenset()  # input attributes whose semantics is PARAMETER
    inputs: frozenset[str] = frozenset()  # the other input attributes: data
    outputs: frozenset[str] = frozenset()
    stage: str | None = None  # provml extension: training, validation, evaluation, inference


@dataclass(frozen=True)
class DataflowSpec:
    """A dataflow's prospective provenance, as the ProvLake client POSTs it."""

    name: str
    transformations: dict[str, TransformationSpec] = field(default_factory=dict)


def parse_prospective(doc: Any) -> DataflowSpec:
    """Check a prospective-provenance document; raise :class:`ValidationError` listing
    every problem. The shape is ProvLake's::

        {"dataflow_name": "…", "context_name": "…", "storages": {…},
         "data_transformations": {"<name>": {
             "input_datasets": [{"attributes": [{"name": "lr", "dtype": "float",
                                                 "semantics": "PARAMETER"}, …]}],
             "output_datasets": [{"attributes": […]}],
             "stage": "training"}}}

    Members not shown are allowed and kept with the document; ``stage`` is provml's.
    """
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise ValidationError(
            "prospective provenance is a JSON object", details=[f"got {json_type(doc)}"]
        )
    name = doc.get("dataflow_name")
    if not is_name(name):
        problems.append("dataflow_name: must be a non-empty string of at most 256 characters")
    dts = doc.get("data_transformations")
    if dts is None:
        dts = {}
    if not isinstance(dts, dict):
        problems.append("data_transformations: must be an object (name → specification)")
        dts = {}
    transformations: dict[str, TransformationSpec] = {}
    for dt, spec in dts.items():
        path = f"data_transformations.{dt}"
        if not is_name(dt):
            problems.append(f"{path}: a data transformation's name must be a short string")
        if not isinstance(spec, dict):
            problems.append(f"{path}: must be an object")
            continue
        stage = spec.get("stage")
        if stage is not None and not among(stage, STAGES):
            problems.append(f"{path}.stage: must be one of {sorted(STAGES)} or null")
            stage = None
        params: set[str] = set()
        inputs: set[str] = set()
        outputs: set[str] = set()
        for key in ("input_datasets", "output_datasets"):
            for attr_name, semantics in _attributes(spec.get(key), f"{path}.{key}", problems):
                if key == "output_datasets":
                    outputs.add(attr_name)
                elif semantics.upper().endswith("PARAMETER"):
                    params.add(attr_name)
                else:
                    inputs.add(attr_name)
        transformations[dt] = TransformationSpec(
            frozenset(params), frozenset(inputs - params), frozenset(outputs), stage
        )
    if problems:
        raise ValidationError(
            f"invalid prospective provenance: {problems[0]}", details=problems[:MAX_PROBLEMS]
        )
    assert isinstance(name, str)
    return DataflowSpec(name, transformations)


def _attributes(datasets: Any, path: str, problems: list[str]) -> list[tuple[str, str]]:
    """(name, semantics) of every top-level attribute of a list of datasets."""
    if datasets is None:
        return []
    if not isinstance(datasets, list):
        problems.append(f"{path}: must be an array of datasets")
        return []
    out = []
    for i, dataset in enumerate(datasets):
        attrs = dataset.get("attributes") if isinstance(dataset, dict) else None
        if not isinstance(dataset, dict) or not isinstance(attrs, list | type(None)):
            problems.append(f"{path}[{i}]: a dataset is an object with an array of attributes")
            continue
        for j, attr in enumerate(attrs or []):
            if not isinstance(attr, dict) or not is_name(attr.get("name")):
                problems.append(f"{path}[{i}].attributes[{j}]: an attribute has a name")
                continue
            semantics = attr.get("semantics")
            out.append((attr["name"], semantics if isinstance(semantics, str) else ""))
    return out
