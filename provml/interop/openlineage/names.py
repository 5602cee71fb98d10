"""The IRIs of OpenLineage's runs, jobs, datasets and columns, and where a dataset is
(the rule that joins it with what capture_lib read or wrote at the same place)."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from provml.core.vocab import ID_BASE

OL_BASE = ID_BASE + "ol/"


def _q(text: str) -> str:
    return quote(text, safe="")


def run_iri(run_id: str) -> str:
    """The activity of a run: a function of its runId alone, so that every event of the
    run (whatever its order, whichever facets it carries) names the same node."""
    return f"{OL_BASE}run/{_q(run_id)}"


def job_iri(namespace: str, name: str) -> str:
    return f"{OL_BASE}job/{_q(namespace)}/{_q(name)}"


def dataset_iri(namespace: str, name: str) -> str:
    """One entity per dataset namespace and name, whoever reads or writes it."""
    return f"{OL_BASE}dataset/{_q(namespace)}/{_q(name)}"


def column_iri(dataset: str, field: str) -> str:
    return f"{dataset}/column/{_q(field)}"


def short_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def locations(namespace: str, name: str) -> tuple[list[str], str | None]:
    """Where a dataset is, as capture_lib would write the path of a file there (its
    ``provml:path``), and the host its namespace names (None: any host).

    * ``file`` + ``/abs/path`` → ``/abs/path`` and ``file:///abs/path``;
    * ``file://host`` + ``/abs/path`` → the same, on ``host`` only;
    * a namespace that is a URI (``s3://bucket``, ``gs://bucket``, ``hdfs://nn:8020``,
      ``postgres://db:5432``) + a name → ``<namespace>/<name>`` (``s3://bucket/key``);
    * anything else (``bigquery``, a relative file name): no location, no join by place.
    """
    if namespace == "file" or namespace.startswith("file://"):
        host = namespace[len("file://") :].strip("/") or None if namespace != "file" else None
        if not name.startswith("/"):
            return [], host
        uri = f"file://{host or ''}{name}"
        return [name, uri], host
    if "://" in namespace:
        return [namespace.rstrip("/") + "/" + name.lstrip("/")], None
    return [], None
