"""`provml import --format mlflow|flowcept`: another tool's records, converted to wire
batches (provml.interop.mlflow, provml.interop.flowcept) and sent to the tracker like a
client's, so that they are typed and answered like captured runs. What could not be
imported is listed on stderr and counted in the summary; the exit status is then 1."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from provml.cli.common import http_client, post_batch

#: the formats this module imports (the others are PROV documents, sent to the manager)
FORMATS = ("mlflow", "flowcept")

SOURCES_HELP = (
    "mlflow: a tracking URI (sqlite:///mlflow.db, http://host:5000, file:///…), an mlruns "
    "directory, or MLflow JSON dumps (.json files or a directory of them); flowcept: files "
    "of Flowcept task messages (MongoDB extended JSON)."
)


def import_foreign(
    fmt: str, sources: tuple[str, ...], url: str, token: str | None, quiet: bool
) -> None:
    if fmt == "mlflow":
        batches, counts, problems = _mlflow(sources)
    else:
        batches, counts, problems = _flowcept(sources)
    refused, queued = _send(batches, url, token, quiet)
    summary = f"imported {counts} in {len(batches) - len(refused)} batches"
    if queued:
        summary += f" ({queued} durably queued by the tracker, not stored yet)"
    if problems or refused:
        summary += f"; not imported: {len(problems) + len(refused)}"
    click.echo(summary)
    for line in problems + refused:
        click.echo(f"not imported: {line}", err=True)
    if problems or refused:
        sys.exit(1)


def _redactor() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Imported parameters hide secrets as captured ones do (capture_lib's redactor,
    with PROVML_REDACT_KEYS)."""
    from capture_lib.redact import Redactor
    from provml.core import config

    return Redactor(config.REDACT_KEYS.get())


def _mlflow(sources: tuple[str, ...]) -> tuple[list[Any], str, list[str]]:
    from provml.interop.mlflow import (
        Snapshot,
        dump_files,
        is_mlruns,
        is_tracking_uri,
        read_dumps,
        read_tracking,
        to_batches,
    )

    snapshot = Snapshot()
    dumps: list[str] = []
    for source in sources:
        if is_tracking_uri(source) or is_mlruns(source):
            try:
                snapshot.merge(read_tracking(source))
            except OSError as exc:
                raise click.ClickException(str(exc)) from None
        elif os.path.isdir(source) or (os.path.isfile(source) and source.endswith(".json")):
            found = dump_files([source])
            if not found:
                raise click.ClickException(
                    f"{source}: no mlruns store (no experiment folders "
                    "with a meta.yaml) and no .json dumps in it"
                )
            dumps += found
        else:
            raise click.ClickException(
                f"{source!r} is no tracking URI (sqlite:///…, http://…, file:///…), mlruns "
                "directory or .json dump" + ("" if os.path.exists(source) else ": no such file")
            )
    if dumps:
        snapshot.merge(read_dumps(dumps))
    converted = to_batches(snapshot, _redactor())
    counts = (
        f"{converted.runs} MLflow runs ({converted.metric_values} metric values, "
        f"{converted.datasets} dataset inputs, {converted.models} models, "
        f"{converted.versions} model versions)"
    )
    if converted.running:
        counts += f", {converted.running} of them still running (import again once they end)"
    return converted.batches, counts, converted.problems


def _flowcept(sources: tuple[str, ...]) -> tuple[list[Any], str, list[str]]:
    from provml.interop import flowcept

    batches: list[Any] = []
    problems: list[str] = []
    messages = tasks = untimed = 0
    for source in sources:
        if not os.path.isfile(source):
            raise click.ClickException(f"{source}: not a file of Flowcept task messages")
        try:
            with open(source, "rb") as f:
                data = flowcept.loads(f.read())
        except (OSError, ValueError) as exc:
            problems.append(f"{source}: not read: {exc}")
            continue
        converted = flowcept.to_batches(data, _redactor(), where=os.path.basename(source))
        batches += converted.batches
        problems += converted.problems
        messages += converted.messages
        tasks += converted.tasks
        untimed += converted.untimed
    counts = f"{tasks} Flowcept tasks from {messages} messages"
    if untimed:
        counts += f" ({untimed} without started_at: placed when Flowcept recorded them)"
    return batches, counts, problems


def _send(batches: list[Any], url: str, token: str | None, quiet: bool) -> tuple[list[str], int]:
    """POST every batch to the tracker; the refused ones, with the tracker's reason, and
    how many were only queued (the tracker stores them once its store answers)."""
    import orjson

    refused: list[str] = []
    queued = 0
    bar = click.progressbar(batches, label="importing", file=sys.stderr, hidden=quiet)
    with http_client(url, token) as service, bar:
        for batch in bar:
            answer, refusal = post_batch(service, orjson.dumps(batch.to_json()), url)
            if refusal:
                refused.append(f"batch {batch.batch}: refused: {refusal}")
                continue
            queued += answer.get("status") == "queued"
    return refused, queued
