"""Writing the graph out: ``provml export``, as a W3C PROV or RDF document."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from provml.cli.common import (
    data_ref,
    http_client,
    local_store,
    refusal_text,
    token_option,
    url_option,
)

if TYPE_CHECKING:
    from provml.client import ProvmlClient

T = TypeVar("T")


@click.command()
@click.option(
    "--model",
    "model",
    help="A model's lineage: its SHA-256, a unique prefix of 8+ digits, its IRI, or a "
    "local file (its content's SHA-256).",
)
@click.option(
    "--entity",
    "entity",
    help="Any entity's lineage (dataset, prediction …), named as --model.",
)
@click.option(
    "--run",
    "run",
    help="One workflow run: its IRI (with --format ro-crate also its short "
    "form id:exec/… or id:ol/run/…, or its UUID).",
)
@click.option("--workflow", "workflow", help="Every run of the workflow with this name.")
@click.option(
    "--document",
    "document",
    help="One imported document, as imported: the id `provml import` printed (the "
    "SHA-256 of the file when imported without --base-iri).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(
        ["turtle", "trig", "ntriples", "jsonld", "provn", "provjson", "provxml", "ro-crate"]
    ),
    default="turtle",
    show_default=True,
    help="provn, provjson and provxml are written by the prov package; ro-crate (with "
    "--run): a Workflow Run RO-Crate, -o DIR or FILE.zip (docs/ro-crate.md).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse a PROV-N/JSON/XML export that would leave statements out (by default "
    "they are left out, and counted on stderr).",
)
@click.option("-o", "--output", type=click.File("wb"), default="-", help="File (default stdout).")
@url_option("URL of the query service (or of `provml serve`).")
@click.option(
    "--data-dir",
    default=None,
    help="Export from an embedded store directly instead of a server (it must not be in "
    "use by a running server).",
)
@token_option
def export(
    model: str | None,
    entity: str | None,
    run: str | None,
    workflow: str | None,
    document: str | None,
    fmt: str,
    strict: bool,
    output: Any,
    url: str,
    data_dir: str | None,
    token: str | None,
) -> None:
    """Export the graph, or part of it, as a W3C PROV or RDF document.

    Without a selection, everything. A lineage (--model, --entity) holds what the entity
    was made from, all the way up: the executions, their inputs, parameters, plans and
    agents. In PROV-N, PROV-JSON and PROV-XML, statements about nodes that are no PROV
    entity, activity, agent or relation cannot be said: they are left out and counted on
    stderr (--strict: refused, exit status 1).

    \b
    provml export --model 3f2a…e9 --format provn
    provml export --workflow credit-scoring --format provjson -o credit.json
    provml export --document 9c1e…07 --format provn
    """
    chosen = [(s, v) for s, v in (("lineage", model or entity), ("run", run),
                                  ("workflow", workflow), ("document", document)) if v]  # fmt: skip
    if model and entity:
        raise click.UsageError("give --model or --entity, not both")
    if len(chosen) > 1:
        raise click.UsageError("give one of --model/--entity, --run, --workflow, --document")
    scope, ident = chosen[0] if chosen else ("all", None)
    if fmt == "ro-crate":
        from provml.cli.crates import export_crate

        if scope != "run" or not ident:
            raise click.UsageError("--format ro-crate exports one workflow run: give --run")
        export_crate(ident, output.name, data_dir, lambda iri: _ask(
            url, token, lambda service: service.export("run", iri, "ntriples")).data)  # fmt: skip
        return
    if scope == "lineage" and ident:
        ident = data_ref(ident)
    if data_dir:
        body, unexpressed, sample = _local_export(data_dir, scope, ident, fmt, strict)
    else:
        exported = _ask(url, token, lambda service: service.export(scope, ident, fmt, strict))
        body, unexpressed, sample = exported.data, exported.unexpressed, exported.sample
    output.write(body)
    if unexpressed:
        from provml.interop.documents import FORMATS
        from provml.interop.export import Exported

        note = Exported(b"", unexpressed, sample).summary(FORMATS[fmt].label)
        click.echo(f"provml export: {note}", err=True)


def _ask(url: str, token: str | None, work: Callable[[ProvmlClient], T]) -> T:
    """``work`` with a client of the query service at ``url``; its errors as messages."""
    from provml.client import ClientError

    try:
        with http_client(url, token) as service:
            return work(service)
    except ClientError as exc:
        if exc.unreachable:
            raise click.ClickException(
                f"cannot reach the query service at {url}: {exc.reason}"
            ) from None
        raise click.ClickException(refusal_text(exc)) from None


def _local_export(
    data_dir: str, scope: str, ident: str | None, fmt: str, strict: bool
) -> tuple[bytes, int, list[str]]:
    from provml.interop import export as ex

    with local_store(data_dir) as store:
        quads = ex.collect(store, scope, ident)
        done = ex.export(quads, fmt, strict=strict, prefixes=ex.declared_prefixes(store))
    return done.data, done.unexpressed, done.sample


@click.command()
@click.option(
    "--run",
    "run",
    required=True,
    help="The workflow run: its UUID, a unique prefix of it, or its IRI (the first column "
    "of `provml ask runs`).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="The HTML file to write (default: provml-report-<run>.html).",
)
@url_option("URL of the query service (or of `provml serve`).")
@click.option(
    "--data-dir",
    default=None,
    help="Read an embedded store directly instead of a server (it must not be in use by "
    "a running server).",
)
@token_option
def report(run: str, output: str | None, url: str, data_dir: str | None, token: str | None) -> None:
    """Write one run's report: a single self-contained HTML file (the run's tasks as a
    graph and a timeline, parameters, metrics as plots, environment, failures, what it
    used and made), with every script, style and datum inside, so that it opens without
    a server, to attach to a review or an audit.

    \b
    provml report --run 0193a7c2 -o review.html
    provml report --run 0193a7c2 --data-dir provml-data
    """
    if data_dir:
        page = _local_report(data_dir, run)
    else:
        page = _ask(url, token, lambda service: service.report(run))
    path = output or f"provml-report-{run.rsplit('/', 1)[-1][:36]}.html"
    data = page.encode("utf-8")
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None
    click.echo(f"wrote {path} ({len(data) / 1024:.0f} KiB, self-contained: open it in a browser)")


def _local_report(data_dir: str, run: str) -> str:
    """The report as the query service makes it, from the embedded store, no server."""
    import json

    from query.app import create_app

    with local_store(data_dir) as store:
        app = create_app({"store": store, "PROVML_QUERY_WORKERS": 0})
        resp = app.test_client().get("/report", query_string={"run": run})
        if resp.status_code >= 400:
            try:
                message = json.loads(resp.get_data(as_text=True))["message"]
            except (ValueError, KeyError, TypeError):
                message = resp.status
            raise click.ClickException(str(message))
        return resp.get_data(as_text=True)
