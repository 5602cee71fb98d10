"""Loading the graph: capture logs (``provml ingest``), through a tracker or straight
into an embedded store, which ``provml compact`` tidies; W3C PROV documents (``provml
import``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from provml.cli.common import (
    env,
    http_client,
    local_store,
    refusal_text,
    token_option,
    url_option,
)
from provml.cli.importing import FORMATS as FOREIGN
from provml.cli.importing import SOURCES_HELP as FOREIGN_HELP
from provml.cli.importing import import_foreign
from provml.core import config

if TYPE_CHECKING:
    from manager.store import Store
    from provml.offline import Report


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@url_option("URL of the tracker.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["native", "provlake"]),
    default="native",
    show_default=True,
    help="native: capture_lib's disk-only files (*.jsonl); provlake: the ProvLake "
    "client's offline logs (prov-*.log).",
)
@click.option(
    "--data-dir",
    default=None,
    help="Load straight into the embedded store in this data directory instead of sending "
    "to a tracker: several times faster, for large backlogs (no server may be using it).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=os.cpu_count() or 2,
    show_default="the number of CPUs",
    help="With --data-dir: processes that validate and map while the store loads.",
)
@click.option(
    "--no-compact",
    is_flag=True,
    help="With --data-dir: do not compact the store after loading (see `provml compact`).",
)
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Exit 0 even if some lines were skipped or batches refused (the rest is loaded "
    "either way; the summary still counts them).",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Without --data-dir: batches in flight to the tracker at once (its forwarder "
    "then writes several in one transaction); 1 sends them one after the other.",
)
@token_option
def ingest(
    paths: tuple[str, ...],
    url: str,
    quiet: bool,
    fmt: str,
    data_dir: str | None,
    workers: int,
    no_compact: bool,
    allow_partial: bool,
    parallel: int,
    token: str | None,
) -> None:
    """Send disk-only capture files (or directories of them) to the tracker, or with
    --data-dir load them straight into an embedded store, then compact it (see
    `provml compact`).

    Each line is a batch (--format provlake: a JSON array of ProvLake records); a torn
    or malformed line is skipped, a batch that is not valid is refused, and the rest is
    loaded. One summary line counts what was loaded, skipped and refused by reason (each
    one is listed on stderr). Exit status 1 if any line was skipped or any batch refused,
    unless --allow-partial. Sending the same files again adds nothing to the graph.
    Memory stays bounded however large the files.

    \b
    provml ingest prov-logs/
    provml ingest --data-dir provml-data prov-logs/     # no server running
    """
    from provml.offline import FORMATS, Report, expand

    files = expand(list(paths), fmt)
    if not files:
        raise click.ClickException(f"no {FORMATS[fmt].files} files found")
    total = sum(os.path.getsize(f) for f in files)
    if data_dir:
        report = _ingest_direct(files, data_dir, fmt, total, quiet, workers, not no_compact)
        _report(report, allow_partial)
        return
    report = Report(files=len(files))
    with click.progressbar(
        length=total,
        label="ingesting",
        show_pos=False,
        show_percent=True,
        file=sys.stderr,
        hidden=quiet,
    ) as bar:
        _send(files, fmt, url, token, parallel, report, bar.update)
    _report(report, allow_partial)


def _send(
    files: list[str],
    fmt: str,
    url: str,
    token: str | None,
    parallel: int,
    report: Report,
    progress: Callable[[int], None],
) -> None:
    """POST every line to the tracker, ``parallel`` at a time (each thread its own
    connection); answers are counted in the files' order."""
    import threading
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    from provml.client import ClientError, ProvmlClient
    from provml.offline import FORMATS, read_lines

    route = FORMATS[fmt].route
    local = threading.local()
    clients: list[ProvmlClient] = []

    def post(body: bytes) -> dict[str, Any]:
        service = getattr(local, "service", None)
        if service is None:
            service = local.service = http_client(url, token)
            clients.append(service)
        answer: dict[str, Any] = service.post_batch(body, route)
        return answer

    def settle(where: str, future: Future[dict[str, Any]]) -> None:
        try:
            answer = future.result()
        except ClientError as exc:
            if exc.unreachable:
                raise click.ClickException(
                    f"cannot reach the tracker at {url}: {exc.reason} (before that: "
                    f"{report.summary()})"
                ) from None
            if not exc.refused:  # an answer that is no JSON
                raise click.ClickException(exc.message) from None
            # the service's error code, as a direct load names it, else the status
            reason = exc.error_code or f"http_{exc.status_code}"
            report.refuse(reason, f"{where}: {exc.status_code} {exc.text[:300]}")
            return
        report.batches += 1
        report.records += int(answer.get("records", 0))

    in_flight: deque[tuple[str, Future[dict[str, Any]]]] = deque()
    pool = ThreadPoolExecutor(parallel, thread_name_prefix="provml-ingest")
    try:
        for path in files:
            for line in read_lines(path, fmt):
                progress(len(line.body) + 1)
                where = f"{os.path.basename(path)}:{line.number}"
                if line.error:
                    report.skip(line.reason or "not_json", f"{where}: {line.error}")
                    continue
                in_flight.append((where, pool.submit(post, line.body)))
                if len(in_flight) >= 2 * parallel:
                    settle(*in_flight.popleft())
        while in_flight:
            settle(*in_flight.popleft())
    finally:
        for _, future in in_flight:
            future.cancel()
        pool.shutdown(wait=True)
        for client in clients:
            client.close()


def _report(report: Report, allow_partial: bool = False) -> None:
    for item in report.skipped:
        click.echo(f"skipped {item}", err=True)
    for item in report.refused:
        click.echo(f"refused {item}", err=True)
    click.echo(report.summary())
    if not report.complete and not allow_partial:
        click.echo("provml ingest: not everything was loaded (--allow-partial to accept)", err=True)
        sys.exit(1)


def _ingest_direct(
    files: list[str],
    data_dir: str,
    fmt: str,
    total: int,
    quiet: bool,
    workers: int,
    compact: bool,
) -> Report:
    from provml.offline import load_direct

    with local_store(data_dir, create=True) as store:
        bar = click.progressbar(
            length=total, label="loading", show_percent=True, file=sys.stderr, hidden=quiet
        )
        with bar:
            report = load_direct(files, store, fmt, progress=bar.update, workers=workers)
        if compact:
            _compact(store, quiet)
        return report


def _compact(store: Store, quiet: bool) -> None:
    import time

    if not quiet:
        click.echo(f"compacting {store.describe()} ...", err=True)
    start = time.perf_counter()
    if store.compact() and not quiet:
        click.echo(f"compacted in {time.perf_counter() - start:.1f} s", err=True)


@click.command()
@click.option(
    "--data-dir",
    default=env(config.DATA_DIR),
    show_default="provml-data",
    help="Data directory whose embedded store to compact; no server may be using it "
    "(PROVML_DATA_DIR).",
)
@click.option("--quiet", is_flag=True, help="No messages.")
def compact(data_dir: str, quiet: bool) -> None:
    """Compact the embedded store for faster queries.

    The bulk loader of `provml ingest --data-dir` leaves the data in many unmerged files
    that every lookup has to visit; compaction merges them (on the benchmark store it
    halved the named questions' latency). Ingest does it after loading unless
    --no-compact; run this after loads made with --no-compact, or to tidy an old store,
    while no server uses it. A store written through the services is kept compacted by
    the store itself. About a second per million triples.

    \b
    provml compact --data-dir provml-data
    """
    with local_store(data_dir) as store:
        _compact(store, quiet)


@click.command(name="import")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "provjson", "provxml", "provn", "turtle", "trig", "ntriples",
                       "nquads", "ro-crate", *FOREIGN]),
    default="auto",
    show_default=True,
    help="The documents' format; auto: by file extension (.json .xml/.provx .provn .ttl "
    ".trig .nt .nq); ro-crate: Workflow Run RO-Crates, each a directory or a zip file, "
    "sent to the tracker at --url (docs/ro-crate.md); " + FOREIGN_HELP,
)  # fmt: skip
@click.option(
    "--base-iri",
    default=None,
    help="Base IRI to resolve relative IRIs against (e.g. Taverna runs' Turtle); a "
    "template for several files: {name} is the file's name, {path} its path as given, "
    "{sha256} its SHA-256 (a template that gives two files one base refuses the second). "
    "Default: each document its own base.",
)
@url_option(
    "URL of the manager (or of `provml serve`); with --format mlflow, flowcept or ro-crate, "
    "of the tracker (a token with the capture scope; PROV documents need admin)."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@token_option
def import_(
    paths: tuple[str, ...],
    fmt: str,
    base_iri: str | None,
    url: str,
    quiet: bool,
    token: str | None,
) -> None:
    """Import W3C PROV documents: PROV-JSON, PROV-XML, PROV-N, or PROV-O as Turtle, TriG,
    N-Triples or N-Quads; or MLflow's or Flowcept's records (--format mlflow, flowcept:
    sent to the tracker as runs; what could not be imported is listed, exit status 1).

    Each document lands whole or not at all; importing one again adds nothing. A document
    that cannot be read is reported with the reason and the others still go in (exit
    status 1). Each line printed names the document's id, for `provml export
    --document`.

    \b
    provml import run.provn experiment.json
    provml import --base-iri http://example.org/run1/ workflowrun.prov.ttl
    provml import --base-iri 'http://example.org/runs/{name}/' */workflowrun.prov.ttl
    provml import --format mlflow sqlite:///mlflow.db      # docs/importers.md
    provml import --format ro-crate results/ run.crate.zip # docs/ro-crate.md
    """
    if fmt in FOREIGN:  # records of another tool, through the tracker
        if base_iri:
            raise click.UsageError(f"--base-iri is for PROV documents, not --format {fmt}")
        return import_foreign(fmt, paths, url, token, quiet)
    for path in paths:
        if not os.path.exists(path):
            raise click.BadParameter(f"{path!r}: no such file or directory", param_hint="PATHS")
        if os.path.isdir(path) and fmt != "ro-crate":
            raise click.BadParameter(f"{path!r} is a directory (only --format ro-crate takes "
                                     "one)", param_hint="PATHS")  # fmt: skip
    if fmt == "ro-crate":
        from provml.cli.crates import import_crates

        import_crates(paths, url, token)
        return
    import hashlib
    from urllib.parse import quote

    from provml.client import ClientError
    from provml.interop.documents import guess_format

    fields = ("{name}", "{path}", "{sha256}")
    if base_iri and len(paths) > 1 and not any(f in base_iri for f in fields):
        raise click.UsageError(
            "--base-iri would give every file the same base, so that their relative IRIs "
            "name the same nodes: use {name}, {path} or {sha256} in it (e.g. "
            "'http://example.org/runs/{sha256}/'), or leave it out"
        )

    failed = 0
    bases: dict[str, str] = {}  # base → SHA-256 of the file that has it
    bar = click.progressbar(
        paths, label="importing", file=sys.stderr, hidden=quiet, item_show_func=lambda p: p
    )
    with http_client(url, token) as service, bar:
        for path in bar:
            name = fmt if fmt != "auto" else guess_format(filename=path)
            if name is None:
                click.echo(f"{path}: unknown extension; give --format", err=True)
                failed += 1
                continue
            with open(path, "rb") as f:
                data = f.read()
            base = None
            if base_iri:
                digest = hashlib.sha256(data).hexdigest()
                base = base_iri.replace("{name}", quote(os.path.basename(path), safe=""))
                base = base.replace("{path}", quote(path)).replace("{sha256}", digest)
                if bases.setdefault(base, digest) != digest:
                    click.echo(f"{path}: refused: --base-iri gives it the base of another "
                               f"file ({base}); use {{sha256}} or {{path}}", err=True)  # fmt: skip
                    failed += 1
                    continue
            try:
                body = service.import_document(data, name, base)
            except ClientError as exc:
                if exc.unreachable:
                    raise click.ClickException(
                        f"cannot reach the manager at {url}: {exc.reason}"
                    ) from None
                if not exc.refused:  # an answer that is no JSON
                    raise click.ClickException(exc.message) from None
                failed += 1
                click.echo(f"{path}: refused: {refusal_text(exc)}", err=True)
                continue
            click.echo(f"{path}: {body['triples']} triples ({name}), document {body['document']}")
    if failed:
        sys.exit(1)


@click.command()
@click.option(
    "--data-dir",
    default=env(config.DATA_DIR),
    show_default="provml-data",
    help="Data directory whose embedded store to index; no server may be using it "
    "(PROVML_DATA_DIR).",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="A store URL instead of --data-dir, e.g. oxigraph+http://HOST:7878 (a SPARQL "
    "server: the managers writing it may keep running).",
)
@click.option("--quiet", is_flag=True, help="No messages.")
def reindex(data_dir: str, store_url: str | None, quiet: bool) -> None:
    """Build the lineage index of a store written before provml kept one.

    was-used and downstream of a raw source read the index instead of walking every
    node below it (docs/querying.md); a store written by an older provml has none, and
    those questions walk — slower, the same answers — until this builds it. Stores
    provml writes from empty keep it themselves. Safe to run again; cut short, it
    leaves the walks in use. About a minute per 10 million triples of derivation data.

    \b
    provml reindex --data-dir provml-data
    provml reindex --store oxigraph+http://127.0.0.1:7878
    """
    import contextlib
    import time

    from manager import lineage
    from manager.store import open_store
    from provml.cli.common import failed
    from provml.core.errors import ProvmlError

    with contextlib.ExitStack() as stack:
        if store_url is None:
            store: Store = stack.enter_context(local_store(data_dir))
        else:
            try:
                store = open_store(store_url)
            except ProvmlError as exc:
                raise failed(exc) from None
            stack.callback(store.close)
        if not store.keeps_lineage_index:
            raise click.ClickException(
                f"{store.describe()} answers with its own dialect or in one graph of a shared "
                "server: provml keeps no lineage index there, its questions always walk"
            )
        started = time.perf_counter()

        def step(what: str) -> None:
            if not quiet:
                click.echo(f"{what} ... ({time.perf_counter() - started:.1f} s)", err=True)

        try:
            lineage.rebuild(store, step)
        except ProvmlError as exc:
            raise failed(exc) from None
        if not quiet:
            click.echo(f"lineage index of {store.describe()} built in "
                       f"{time.perf_counter() - started:.1f} s", err=True)  # fmt: skip
