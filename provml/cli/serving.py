"""Running the services: ``provml serve``, and the demo workflow against them (``provml
demo``)."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from provml import __version__
from provml.cli.common import (
    client_errors,
    env,
    failed,
    http_client,
    token_option,
    url_option,
)
from provml.core import config

if TYPE_CHECKING:
    from provml.client import ProvmlClient


@click.command()
@click.option(
    "--host",
    default=env(config.HOST),
    show_default="127.0.0.1",
    help="Address to bind (PROVML_HOST).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=env(config.PORT),
    show_default="5000",
    help="Port to listen on; 0 picks a free one (PROVML_PORT).",
)
@click.option(
    "--data-dir",
    default=env(config.DATA_DIR),
    show_default="provml-data",
    help="Directory of the embedded store (PROVML_DATA_DIR).",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="Store URL instead of --data-dir (oxigraph:PATH, memory:).",
)
@click.option(
    "--component",
    "components",
    multiple=True,
    type=click.Choice(["tracker", "manager", "query"]),
    help="Serve only this component (repeatable). Default: all three.",
)
@click.option(
    "--manager-url",
    default=env(config.MANAGER_URL),
    help="Where a tracker served without a manager forwards batches.",
)
@click.option(
    "--broker",
    default=env(config.BROKER_URL),
    help="Redis URL (redis:// or rediss://) of the broker: a tracker publishes batches to "
    "its stream instead of a local queue, a manager consumes them in a consumer group "
    "(PROVML_BROKER_URL; the password in the URL or PROVML_BROKER_PASSWORD; stream and "
    "group: PROVML_BROKER_STREAM, PROVML_BROKER_GROUP). See docs/deploy.md.",
)
@click.option(
    "--threads",
    type=int,
    default=env(config.THREADS),
    show_default="8",
    help="WSGI worker threads.",
)
@click.option(
    "--demo",
    "run_demo",
    is_flag=True,
    help="Once listening, run the demo workflow against this server and print "
    "its lineage; keep serving (with PROVML_TOKEN when the server has tokens). A demo "
    "that already ran into this data directory is not run again: its lineage is shown.",
)
@click.option(
    "--tokens-file",
    default=env(config.TOKENS_FILE),
    help="File of the access tokens to accept (PROVML_TOKENS_FILE; also PROVML_TOKENS); "
    "SIGHUP re-reads it. See docs/security.md.",
)
@click.option(
    "--manager-token",
    default=env(config.MANAGER_TOKEN),
    help="Token a tracker sends to --manager-url (capture scope). Prefer "
    "PROVML_MANAGER_TOKEN: a flag is visible in the process list.",
)
@click.option(
    "--audit-log",
    default=env(config.AUDIT_LOG),
    show_default="<data-dir>/audit.log",
    help="File to append audit events to; 'off' for none (PROVML_AUDIT_LOG).",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve on an address other than loopback without access tokens: anyone who "
    "reaches it may read and write everything.",
)
def serve(
    host: str,
    port: int,
    data_dir: str,
    store_url: str | None,
    components: tuple[str, ...],
    manager_url: str | None,
    broker: str | None,
    threads: int,
    run_demo: bool,
    tokens_file: str | None,
    manager_token: str | None,
    audit_log: str | None,
    insecure_no_auth: bool,
) -> None:
    """Serve the tracker, manager and query service (all in one process by default).

    The SPARQL endpoint is /sparql on the serving port; batches go to /api/v1/batches.
    Stops on Ctrl-C or SIGTERM after finishing the requests in flight.

    Without access tokens (--tokens-file, PROVML_TOKENS_FILE, PROVML_TOKENS) it serves
    only on a loopback address unless given --insecure-no-auth (docs/security.md).
    """
    from provml.core.errors import ProvmlError
    from provml.server import COMPONENTS, build_app
    from provml.server import serve as run_server
    from provml.server import store_url as mk_url
    from provml.web import auth
    from provml.web.audit import AuditLog

    wanted = components or COMPONENTS
    try:
        tokens = auth.load(tokens_file, config.TOKENS.get())
    except ProvmlError as exc:
        raise failed(exc) from None
    if not tokens and not insecure_no_auth and not auth.is_loopback(host):
        raise click.ClickException(
            f"refusing to serve on {host} without access tokens: anyone who can reach it "
            "could read and write the whole graph. Give tokens (--tokens-file, "
            "PROVML_TOKENS_FILE or PROVML_TOKENS; docs/security.md), bind to 127.0.0.1, "
            "or pass --insecure-no-auth if something else guards it."
        )
    if audit_log is None:
        audit_log = os.path.join(data_dir, "audit.log")
    audit = None
    if audit_log.lower() not in ("off", "none", "-"):
        try:
            audit = AuditLog(audit_log)
        except OSError as exc:
            raise click.ClickException(f"cannot open the audit log {audit_log}: {exc}") from None
    try:
        app = build_app(
            wanted,
            store=(store_url or mk_url(data_dir)) if {"manager", "query"} & set(wanted) else None,
            manager_url=manager_url,
            queue_dir=os.path.join(data_dir, "queue"),
            tokens=tokens,
            audit_log=audit,
            manager_token=manager_token,
            broker=broker,
        )
    except ProvmlError as exc:
        if audit is not None:
            audit.close()
        raise failed(exc) from None
    store = app.extensions.get("provml.store")

    def ready(url: str) -> None:
        click.echo(f"provml {__version__} serving {', '.join(wanted)} on {url}")
        if store is not None:
            click.echo(f"  store:           {store.describe()}")
        if "query" in wanted:
            click.echo(f"  browser:         {url}/")
            click.echo(f"  SPARQL endpoint: {url}/sparql")
        if broker:
            from provml.core.broker import BrokerURL

            click.echo(
                f"  broker:          {BrokerURL.parse(broker)} stream "
                f"{config.BROKER_STREAM.get()} (group {config.BROKER_GROUP.get()})"
            )
        if "tracker" in wanted:
            click.echo(f"  capture with:    PROVML_URL={url}")
        if tokens:
            reread = " (SIGHUP re-reads the file)" if tokens.path else ""
            click.echo(f"  access:          {len(tokens)} tokens from {tokens.source}{reread}")
        else:
            click.echo("  access:          no tokens: every request is allowed")
        if audit is not None:
            click.echo(f"  audit log:       {audit.path}")
        if run_demo:
            _demo_and_report(url, os.path.join(data_dir, "demo"), config.TOKEN.get(), again=False)
            click.echo(f"\nOpen {url}/ in a browser to see the runs   (Ctrl-C to stop)")
        sys.stdout.flush()

    try:
        run_server(app, host, port, threads=threads, ready=ready)
    except ProvmlError as exc:
        raise failed(exc) from None


@click.command()
@url_option()
@click.option(
    "--workdir",
    default=lambda: os.path.join(env(config.DATA_DIR)(), "demo"),
    show_default="provml-data/demo",
    help="Where the demo writes its dataset, splits and model (under PROVML_DATA_DIR).",
)
@token_option
def demo(url: str, workdir: str, token: str | None) -> None:
    """Run the scikit-learn demo workflow against a running server and print its lineage.

    With tokens, the token needs the capture and read scopes."""
    from provml.client import ClientError

    with http_client(url, token) as service:
        try:  # before running anything: the workflow would spool its records to disk
            service.health()
        except ClientError as exc:
            raise click.ClickException(
                f"no provml service answers at {url} ({exc.cause}): start one with "
                "`provml serve`, or give its --url"
            ) from None
    _demo_and_report(url, workdir, token)


def _demo_and_report(url: str, workdir: str, token: str | None, again: bool = True) -> None:
    """Run the demo and print its lineage; unless ``again``, a demo that already ran into
    this store (``workdir/demo-run.json`` and its run in the graph) is not run twice:
    its lineage is printed instead (a second ``make run`` adds nothing to the store)."""
    import dataclasses

    import capture_lib as cl
    from examples import sklearn_demo as demo_mod

    marker = os.path.join(workdir, "demo-run.json")
    if not again and os.path.exists(marker):
        with http_client(url, token) as service, client_errors():
            earlier = service.ask("runs-history", {"workflow": demo_mod.WORKFLOW})
        if earlier["results"]["bindings"]:
            with open(marker, encoding="utf-8") as f:
                run = demo_mod.DemoRun(**json.load(f))
            click.echo(
                f"\nThe demo workflow '{demo_mod.WORKFLOW}' already ran into this store: not "
                "running it again (`provml demo` would add another run)"
            )
            _demo_report(url, token, run)
            return
    click.echo(f"\nRunning the demo workflow '{demo_mod.WORKFLOW}' (capture over HTTP to {url})")
    cl.init(url=url, mode="http", path=os.path.join(workdir, "spool"), token=token)
    run = demo_mod.run(workdir)
    stats = cl.stats()
    click.echo(
        f"  captured {stats['records_sent']} records in {stats['batches_sent']} batches; "
        f"test accuracy {run.accuracy:.3f}"
    )
    if stats["lost"] or stats["spilled_to_disk"]:
        click.echo(f"  warning: {stats}", err=True)
    else:
        with open(marker, "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(run), f)
    _demo_report(url, token, run)


def _demo_report(url: str, token: str | None, run: Any) -> None:
    with http_client(url, token) as service, client_errors():
        click.echo(
            f"\nWhich data trained the model {run.model_path} (sha256 {run.model_sha256[:12]}…)?"
        )
        click.echo(_ask_table(service, "training-data", {"model": run.model_sha256}))
        click.echo("\nWith which hyperparameters?")
        click.echo(_ask_table(service, "hyperparameters", {"model": run.model_sha256}))
        if run.predictions:
            click.echo(f"\nWhich model made the prediction {run.predictions[0]}?")
            prediction = {"prediction": run.predictions[0]}
            click.echo(_ask_table(service, "prediction-model", prediction))
    click.echo(
        f"\nIn the browser: the model {url}/models/{run.model_sha256}\n"
        f"                its lineage {url}/lineage?node={run.model_sha256}&direction=up"
    )


def _ask_table(service: ProvmlClient, name: str, params: dict[str, str]) -> str:
    """The first page of a question's answer as a table, without the parameters' columns."""
    from provml.cli.table import render

    return render(service.ask(name, params), hide=frozenset(params))
