"""Writing the graph out: ``provml export``, as a W3C PROV or RDF document."""

from __future__ import annotations

from typing import Any

import click

from provml.cli.common import (
    data_ref,
    http_client,
    local_store,
    refusal_text,
    token_option,
    url_option,
)


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
@click.option("--run", "run", help="One workflow run: its IRI.")
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
    type=click.Choice(["turtle", "trig", "ntriples", "jsonld", "provn", "provjson", "provxml"]),
    default="turtle",
    show_default=True,
    help="provn, provjson and provxml are written by the prov package.",
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
    if scope == "lineage" and ident:
        ident = data_ref(ident)
    if data_dir:
        body, unexpressed, sample = _local_export(data_dir, scope, ident, fmt, strict)
    else:
        from provml.client import ClientError

        try:
            with http_client(url, token) as service:
                exported = service.export(scope, ident, fmt, strict)
        except ClientError as exc:
            if exc.unreachable:
                raise click.ClickException(
                    f"cannot reach the query service at {url}: {exc.reason}"
                ) from None
            raise click.ClickException(refusal_text(exc)) from None
        body, unexpressed, sample = exported.data, exported.unexpressed, exported.sample
    output.write(body)
    if unexpressed:
        from provml.interop.documents import FORMATS
        from provml.interop.export import Exported

        note = Exported(b"", unexpressed, sample).summary(FORMATS[fmt].label)
        click.echo(f"provml export: {note}", err=True)


def _local_export(
    data_dir: str, scope: str, ident: str | None, fmt: str, strict: bool
) -> tuple[bytes, int, list[str]]:
    from provml.interop import export as ex

    with local_store(data_dir) as store:
        quads = ex.collect(store, scope, ident)
        done = ex.export(quads, fmt, strict=strict, prefixes=ex.declared_prefixes(store))
    return done.data, done.unexpressed, done.sample
