"""yProv4ML's PROV-JSON typed into provml's classes, at import (docs/interop.md).

yProv4ML (HPCI-Lab) writes PROV-JSON whose entities carry PROV-ML types as
``"prov:type": "provml:Model"``, with its ``provml`` prefix bound to the word ``prov-ml``
(so the type arrives as that string, or as an IRI under the document's ``prov-ml/``). A
document is yProv4ML's when it declares the yProv4ML namespace or that ``prov-ml``
prefix. For such a document, each entity typed

* ``Model`` also becomes ``provml:Model`` and ``provml:Data``,
* ``Dataset`` (and yProv4ML's ``TrainingSet``, ``ValidationSet``, ``TestSet``) also
  ``provml:LearningData`` and ``provml:Data``,
* ``Metric`` also ``provml:ModelEvaluation``, with ``provml:name`` its metric's name
  (its label without the ``<source>/`` and ``/<context>`` yProv4ML puts around it).

Only types are added, to entities the document types so: no edge, no identity, no
content hash. Nothing is connected that the document did not connect.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyoxigraph import DefaultGraph, Literal, NamedNode, Quad

from provml.core.vocab import PROVML, RDF, RDFS

YPROV_NS = "https://github.com/HPCI-Lab/yProv4ML"
#: yProv4ML's type (local name) → provml's classes
CLASSES: dict[str, tuple[NamedNode, ...]] = {
    "Model": (PROVML.Model, PROVML.Data),
    "Dataset": (PROVML.LearningData, PROVML.Data),
    "TrainingSet": (PROVML.LearningData, PROVML.Data),
    "ValidationSet": (PROVML.LearningData, PROVML.Data),
    "TestSet": (PROVML.LearningData, PROVML.Data),
    "Metric": (PROVML.ModelEvaluation,),
}


def is_yprov4ml(prefixes: dict[str, str]) -> bool:
    return any(ns.rstrip("/#").startswith(YPROV_NS) or ns.rstrip("/").endswith("/prov-ml")
               for ns in prefixes.values())  # fmt: skip


def _local(obj: object, namespaces: tuple[str, ...]) -> str | None:
    """The yProv4ML type a ``prov:type`` value names, if it is one."""
    if isinstance(obj, Literal):
        prefix, colon, name = obj.value.partition(":")
        return name if colon and prefix in ("provml", "prov-ml", "prov_ml") else None
    if isinstance(obj, NamedNode):
        for ns in namespaces:
            if obj.value.startswith(ns):
                return obj.value[len(ns) :]
    return None


def typed(quads: Iterable[Quad], prefixes: dict[str, str]) -> list[Quad]:
    """The provml types (and metric names) to add to a yProv4ML document's statements;
    nothing for any other document."""
    if not is_yprov4ml(prefixes):
        return []
    quads = list(quads)
    namespaces = tuple(ns for ns in prefixes.values() if ns.rstrip("/").endswith("/prov-ml"))
    labels: dict[object, str] = {}
    around: dict[object, dict[str, str]] = {}
    for q in quads:
        if q.predicate == RDFS.label and isinstance(q.object, Literal):
            labels[q.subject] = q.object.value
        elif q.predicate.value in (f"{YPROV_NS}source", f"{YPROV_NS}context") and isinstance(
            q.object, Literal
        ):
            around.setdefault(q.subject, {})[q.predicate.value[len(YPROV_NS) :]] = q.object.value
    out: list[Quad] = []
    for q in quads:
        if q.predicate != RDF.type or not isinstance(q.graph_name, DefaultGraph):
            continue
        kind = _local(q.object, namespaces)
        if kind not in CLASSES:
            continue
        out += [Quad(q.subject, RDF.type, cls, q.graph_name) for cls in CLASSES[kind]]
        if kind == "Metric":
            out.append(Quad(q.subject, PROVML.name, Literal(_metric_name(
                labels.get(q.subject, ""), around.get(q.subject, {}))), q.graph_name))  # fmt: skip
    return list(dict.fromkeys(out))


def _metric_name(label: str, around: dict[str, str]) -> str:
    """``apple_gpu/cpu_usage/finetune`` (source, name, context) → ``cpu_usage``."""
    name = label
    source, context = around.get("source"), around.get("context")
    if source and name.startswith(source + "/"):
        name = name[len(source) + 1 :]
    if context and name.endswith("/" + context):
        name = name[: -len(context) - 1]
    return name or label or "metric"
