"""Workflow Run RO-Crates: ``provml export --format ro-crate --run R`` and ``provml
import --format ro-crate DIR|ZIP`` (the conversions: :mod:`provml.interop.rocrate`;
docs/ro-crate.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click

from provml.cli.common import http_client, local_store, post_batch


def _run_iri(run: str) -> str:
    from provml.core import ids

    text = run.strip()
    if len(text) == 36 and text.count("-") == 4:  # a bare execution UUID
        text = f"{ids.ID_BASE}exec/{text.lower()}"
    try:
        return ids.ref_iri(text, data=False)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--run") from None


def export_crate(
    run: str, output: str, data_dir: str | None, fetch: Callable[[str], bytes]
) -> None:
    """Write the crate of one workflow run to ``output`` (a directory, or a ``.zip``;
    ``-``: ``provml-crate-<run>/``), from the store in ``data_dir``, else from the run's
    export as N-Triples that ``fetch(run IRI)`` gets from the query service."""
    from provml.core.errors import ProvmlError
    from provml.interop import export as ex
    from provml.interop.rocrate import writer

    iri = _run_iri(run)
    if data_dir:
        with local_store(data_dir) as store:
            try:
                quads = ex.collect(store, "run", iri)
            except ProvmlError as exc:
                raise click.ClickException(exc.message) from None
    else:
        import pyoxigraph as ox

        body = fetch(iri)
        quads = list(ox.parse(body, format=ox.RdfFormat.N_QUADS))
    try:
        metadata = writer.write_metadata(quads, iri)
    except ProvmlError as exc:
        raise click.ClickException(exc.message) from None
    target = writer.crate_dir_name(iri) if output in ("-", "<stdout>") else output
    try:
        path = writer.write_crate(metadata, target)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None
    actions = sum(1 for e in metadata["@graph"] if e.get("@type") == "CreateAction")
    files = [e for e in metadata["@graph"] if e.get("@type") == "File"]
    hashed = sum(1 for e in files if "sha256" in e)
    click.echo(f"wrote {path}: a Workflow Run RO-Crate of {iri} ({actions} CreateActions, "
               f"{len(files)} files referenced, not copied, {hashed} by SHA-256)")  # fmt: skip


def import_crates(paths: tuple[str, ...], url: str, token: str | None) -> None:
    """Read each crate into wire batches, all checked before any is sent, then send them
    to the tracker at ``url``. Exit status 1 if a crate was refused or anything in one
    could not be imported."""
    from provml.core.errors import ValidationError
    from provml.interop.rocrate import open_crate, to_batches

    failed = 0
    read = []
    for path in paths:
        try:
            with open_crate(path) as source:
                read.append((path, to_batches(source)))
        except ValidationError as exc:
            failed += 1
            click.echo(f"{path}: refused: {exc.message}", err=True)
            for detail in exc.details[:20]:
                click.echo(f"  {detail}", err=True)
        except OSError as exc:
            failed += 1
            click.echo(f"{path}: cannot read: {exc.strerror or exc}", err=True)
    with http_client(url, token) as service:
        for path, imported in read:
            records, refusal = 0, ""
            for batch in imported.batches:
                answer, refusal = post_batch(service, json.dumps(batch.to_json()).encode(), url)
                if refusal:
                    break
                records += int(answer.get("records", 0))
            if refusal:
                failed += 1
                click.echo(f"{path}: refused: {refusal}", err=True)
                continue
            for item in imported.skipped:
                click.echo(f"{path}: not imported: {item}", err=True)
            failed += bool(imported.skipped)
            click.echo(f"{path}: {imported.summary()}; {records} records in "
                       f"{len(imported.batches)} batch(es)")  # fmt: skip
    if failed:
        sys.exit(1)
