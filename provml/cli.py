"""The ``provml`` command. ``provml --help`` lists the subcommands."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import click

from provml import __version__
from provml.core import config

_URL_HELP = "URL of the provml service (tracker and query)."
#: seconds to connect (and, for https, to finish the TLS handshake) before giving up
CONNECT_TIMEOUT = 10


def _http_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A --url must be http:// or https:// with a host (requests would say "No
    connection adapters were found")."""
    from urllib.parse import urlsplit

    if value is None or ctx.params.get("data_dir"):  # with --data-dir no URL is used
        return value
    try:
        parts = urlsplit(value.strip())
    except ValueError as exc:  # an unclosed [ of an IPv6 address …
        raise click.BadParameter(f"{value!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(
            f"{value!r} is not an http:// or https:// URL (e.g. http://127.0.0.1:5000)"
        )
    return value.strip()


def _url_option(help: str = _URL_HELP) -> Any:
    """``--url``: the service to talk to, from PROVML_URL by default, checked as an
    http(s) URL."""
    return click.option(
        "--url",
        default=_env(config.URL, DEFAULT_URL),
        callback=_http_url,
        show_default=DEFAULT_URL,
        help=help,
    )


def _env(setting: config.Setting, fallback: Any = None) -> Any:
    """An option default read from the environment when the command runs; a bad value
    is a usage error naming the variable, not a traceback."""

    def default() -> Any:
        from provml.core.errors import ConfigError

        try:
            value = setting.get()
        except ConfigError as exc:
            raise click.UsageError(exc.message) from None
        return fallback if value is None else value

    return default


DEFAULT_URL = "http://127.0.0.1:5000"


def _token_option(command: Any) -> Any:
    """``--token``, default PROVML_TOKEN (never shown in --help)."""
    return click.option(
        "--token",
        default=_env(config.TOKEN),
        help="Access token to send (default: PROVML_TOKEN, which is better: a flag is "
        "visible to other users in the process list).",
    )(command)


def _auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="provml")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """provml: provenance of ML and HPC workflows as a W3C PROV graph.

    \b
    Start the services:          provml serve
    Run the demo against them:   provml demo
    Load disk-only capture logs: provml ingest prov-logs/
    Ask a lineage question:      provml ask training-data model=<sha256>
    Run any SPARQL query:        provml query 'SELECT * WHERE { ?s ?p ?o } LIMIT 10'
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option(
    "--host",
    default=_env(config.HOST),
    show_default="127.0.0.1",
    help="Address to bind (PROVML_HOST).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=_env(config.PORT),
    show_default="5000",
    help="Port to listen on; 0 picks a free one (PROVML_PORT).",
)
@click.option(
    "--data-dir",
    default=_env(config.DATA_DIR),
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
    default=_env(config.MANAGER_URL),
    help="Where a tracker served without a manager forwards batches.",
)
@click.option(
    "--threads",
    type=int,
    default=_env(config.THREADS),
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
    default=_env(config.TOKENS_FILE),
    help="File of the access tokens to accept (PROVML_TOKENS_FILE; also PROVML_TOKENS); "
    "SIGHUP re-reads it. See docs/security.md.",
)
@click.option(
    "--manager-token",
    default=_env(config.MANAGER_TOKEN),
    help="Token a tracker sends to --manager-url (capture scope). Prefer "
    "PROVML_MANAGER_TOKEN: a flag is visible in the process list.",
)
@click.option(
    "--audit-log",
    default=_env(config.AUDIT_LOG),
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
        raise _failed(exc) from None
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
        )
    except ProvmlError as exc:
        if audit is not None:
            audit.close()
        raise _failed(exc) from None
    store = app.extensions.get("provml.store")

    def ready(url: str) -> None:
        click.echo(f"provml {__version__} serving {', '.join(wanted)} on {url}")
        if store is not None:
            click.echo(f"  store:           {store.describe()}")
        if "query" in wanted:
            click.echo(f"  SPARQL endpoint: {url}/sparql")
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
            click.echo(f"\nSPARQL endpoint: {url}/sparql   (Ctrl-C to stop)")
        sys.stdout.flush()

    try:
        run_server(app, host, port, threads=threads, ready=ready)
    except ProvmlError as exc:
        raise _failed(exc) from None


@main.command()
@_url_option()
@click.option(
    "--workdir",
    default=lambda: os.path.join(_env(config.DATA_DIR)(), "demo"),
    show_default="provml-data/demo",
    help="Where the demo writes its dataset, splits and model (under PROVML_DATA_DIR).",
)
@_token_option
def demo(url: str, workdir: str, token: str | None) -> None:
    """Run the scikit-learn demo workflow against a running server and print its lineage.

    With tokens, the token needs the capture and read scopes."""
    import requests

    try:  # before running anything: the workflow would spool its records to disk
        requests.get(url.rstrip("/") + "/healthz", timeout=(CONNECT_TIMEOUT, 10))
    except requests.RequestException as exc:
        raise click.ClickException(
            f"no provml service answers at {url} ({type(exc).__name__}): start one with "
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

    client = _Client(url, token)
    marker = os.path.join(workdir, "demo-run.json")
    if not again and os.path.exists(marker):
        earlier = client.ask("runs-history", {"workflow": demo_mod.WORKFLOW})
        if earlier["results"]["bindings"]:
            with open(marker, encoding="utf-8") as f:
                run = demo_mod.DemoRun(**json.load(f))
            click.echo(
                f"\nThe demo workflow '{demo_mod.WORKFLOW}' already ran into this store: not "
                "running it again (`provml demo` would add another run)"
            )
            _demo_report(client, run)
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
    _demo_report(client, run)


def _demo_report(client: _Client, run: Any) -> None:
    click.echo(
        f"\nWhich data trained the model {run.model_path} (sha256 {run.model_sha256[:12]}…)?"
    )
    click.echo(client.ask_table("training-data", {"model": run.model_sha256}))
    click.echo("\nWith which hyperparameters?")
    click.echo(client.ask_table("hyperparameters", {"model": run.model_sha256}))
    if run.predictions:
        click.echo(f"\nWhich model made the prediction {run.predictions[0]}?")
        click.echo(client.ask_table("prediction-model", {"prediction": run.predictions[0]}))


class _Client:
    """The CLI's HTTP client for the query side."""

    def __init__(self, url: str, token: str | None = None) -> None:
        import requests

        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers.update(_auth_headers(token))

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return self._check(self._response(path, params))

    def _response(self, path: str, params: dict[str, str]) -> Any:
        import requests

        try:
            return self.http.get(
                self.url + path,
                params=params,
                headers={"Accept": "application/sparql-results+json"},
                timeout=(CONNECT_TIMEOUT, 120),
            )
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot reach {self.url}: {exc}") from None

    def sparql(self, text: str) -> dict[str, Any] | str:
        """A table as SPARQL JSON results, or a graph (CONSTRUCT, DESCRIBE) as Turtle."""
        import requests

        try:
            resp = self.http.post(
                self.url + "/sparql",
                data={"query": text},
                headers={"Accept": "application/sparql-results+json, text/turtle;q=0.9"},
                timeout=(CONNECT_TIMEOUT, 120),
            )
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot reach {self.url}: {exc}") from None
        if resp.ok and resp.headers.get("Content-Type", "").startswith("text/turtle"):
            return str(resp.text)
        return self._check(resp)

    @staticmethod
    def _check(resp: Any) -> dict[str, Any]:
        if resp.status_code >= 400:
            try:
                body = resp.json()
                message = _with_details(str(body.get("message", resp.text)), body.get("details"))
            except (ValueError, AttributeError):
                message = resp.text
            raise click.ClickException(f"{resp.status_code}: {message}")
        try:
            result: dict[str, Any] = resp.json()
        except ValueError:
            raise click.ClickException(
                f"{resp.url} did not answer with SPARQL JSON results (is it a provml service?)"
            ) from None
        return result

    def ask(self, name: str, params: dict[str, str]) -> dict[str, Any]:
        return self.ask_page(name, params)[0]

    def ask_page(self, name: str, params: dict[str, str]) -> tuple[dict[str, Any], bool]:
        """One page of a question's rows, and whether the service has more."""
        resp = self._response(f"/api/v1/questions/{name}", params)
        return self._check(resp), "next" in resp.links

    def ask_table(self, name: str, params: dict[str, str]) -> str:
        from provml.table import render

        return render(self.ask(name, params), hide=frozenset(params))


@main.command()
@click.argument("query_text", required=False)
@click.option(
    "-f",
    "--file",
    "query_file",
    type=click.File("r"),
    help="Read the query from a file ('-' for stdin).",
)
@_url_option()
@click.option(
    "--data-dir",
    default=None,
    help="Query an embedded store directly instead of a server (it must not be "
    "in use by a running server).",
)
@click.option("--json", "as_json", is_flag=True, help="Print SPARQL JSON results.")
@_token_option
def query(
    query_text: str | None,
    query_file: Any,
    url: str,
    data_dir: str | None,
    as_json: bool,
    token: str | None,
) -> None:
    """Run a SPARQL query: SELECT and ASK print a table (or --json), CONSTRUCT and
    DESCRIBE a graph as Turtle.

    The prefixes prov:, provml:, mls:, rdf:, rdfs:, xsd: and dcterms: are predeclared.

    \b
    provml query 'SELECT ?model WHERE { ?model a provml:Model }'
    provml query -f lineage.rq --json
    """
    from provml.table import render

    if query_file is not None:
        query_text = query_file.read()
    if not query_text:
        raise click.UsageError("give a query as an argument or with --file")
    from provml.core.sparql_text import first_keyword, is_update

    if is_update(query_text):  # said before sending: the parser would say "expected CONSTRUCT"
        raise click.ClickException(
            f"{first_keyword(query_text)[0]} is a SPARQL update, and the endpoint is "
            "read-only: provml query runs SELECT, ASK, CONSTRUCT and DESCRIBE only"
        )
    results = (
        _local_query(data_dir, query_text) if data_dir else _Client(url, token).sparql(query_text)
    )
    if isinstance(results, str):  # a graph, as Turtle
        click.echo(results, nl=False)
    else:
        click.echo(json.dumps(results, indent=2) if as_json else render(results))


@contextlib.contextmanager
def _local_store(data_dir: str, create: bool = False) -> Iterator[Any]:
    """The embedded store of ``data_dir`` (made if ``create``), closed after use; its
    errors (none there, another process using it, a failed read or write) as CLI
    messages."""
    from manager.store import open_store
    from provml.core.errors import ProvmlError
    from provml.server import store_url

    if not create and not os.path.isdir(os.path.join(data_dir, "store")):
        raise click.ClickException(f"no embedded store in {data_dir} (expected {data_dir}/store)")
    try:
        store = open_store(store_url(data_dir))
    except ProvmlError as exc:
        raise _failed(exc) from None
    try:
        yield store
    except ProvmlError as exc:
        raise _failed(exc) from None
    finally:
        store.close()


def _local_query(data_dir: str, text: str) -> dict[str, Any] | str:
    import pyoxigraph

    with _local_store(data_dir) as store:
        result = store.query(text)
        if isinstance(result, pyoxigraph.QueryTriples):
            from provml.core.vocab import PREFIXES

            turtle = pyoxigraph.serialize(
                result, format=pyoxigraph.RdfFormat.TURTLE, prefixes=PREFIXES
            )
            return (turtle or b"").decode("utf-8")
        serialized = result.serialize(format=pyoxigraph.QueryResultsFormat.JSON)
    data: dict[str, Any] = json.loads(serialized or b"{}")
    return data


_DATA_DIR_HELP = (
    "Read the embedded store in this data directory instead of asking a server (no server "
    "may be using it)."
)


def _data_ref(value: str) -> str:
    """A data reference as typed: a path to an existing local file means its content's
    SHA-256 (a directory: its hash of hashes, as capture_lib names it); anything else
    (a hash, a unique prefix of one, an IRI) as given."""
    if not os.path.exists(value):
        return value
    from capture_lib.refs import sha256_directory, sha256_file

    try:
        return (sha256_directory if os.path.isdir(value) else sha256_file)(value)[0]
    except OSError as exc:
        raise click.ClickException(f"cannot read {value}: {exc.strerror or exc}") from None


@main.command()
@click.argument("name", required=False)
@click.argument("params", nargs=-1)
@_url_option()
@click.option("--data-dir", default=None, help=_DATA_DIR_HELP)
@click.option("--limit", type=click.IntRange(1, 100_000), help="Rows per page (default 1,000).")
@click.option("--offset", type=click.IntRange(0), default=0, help="Rows to skip.")
@click.option("--json", "as_json", is_flag=True, help="Print SPARQL JSON results.")
@_token_option
def ask(
    name: str | None,
    params: tuple[str, ...],
    url: str,
    data_dir: str | None,
    limit: int | None,
    offset: int,
    as_json: bool,
    token: str | None,
) -> None:
    """Ask a named lineage question: provml ask NAME key=value …

    Without NAME, lists the questions and their parameters. A model or data parameter
    takes an IRI, the SHA-256 of the file, a unique prefix of it (8 digits or more), or
    the path of a local file (its content is hashed). `provml ask runs` lists the recent
    workflow runs with their ids. Answers come a page at a time (--limit, --offset).

    \b
    provml ask runs --limit 20
    provml ask training-data model=./model.pkl
    provml ask was-used source=3fa4c2d1
    """
    from query import questions

    if not name:
        for q in questions.questions().values():
            args = " ".join(f"{p.name}=<{p.kind}>" for p in q.params)
            click.echo(f"{q.name} {args}\n    {q.title}")
        return
    question = questions.get(name) if name in questions.questions() else None
    kinds = {p.name: p.kind for p in question.params} if question else {}
    values = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"parameters are key=value, got {item!r}")
        values[key] = _data_ref(value) if kinds.get(key) == "data" else value
    paging = {"offset": str(offset)} | ({"limit": str(limit)} if limit else {})
    if data_dir:
        result, more = _local_ask(data_dir, name, values | paging)
    else:
        result, more = _Client(url, token).ask_page(name, values | paging)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        from provml.table import render

        click.echo(render(result, hide=frozenset(values)))
    if more:
        shown = len(result["results"]["bindings"])
        click.echo(
            f"(rows {offset + 1}-{offset + shown}; more with --offset {offset + shown})", err=True
        )


def _local_ask(data_dir: str, name: str, values: dict[str, str]) -> tuple[dict[str, Any], bool]:
    from provml.core.errors import ProvmlError
    from query import pages, questions
    from query.results import solutions_json

    with _local_store(data_dir) as store:
        try:
            page = pages.ask(store, questions.get(name, store.dialect), values)
            body = solutions_json(page.variables, page)
        except ProvmlError as exc:
            raise _failed(exc) from None
    return json.loads(body), page.more


def _print_record(record: dict[str, Any], indent: str = "") -> None:
    """A record as aligned "key: value" lines, lists as indented tables."""
    from provml.table import shorten

    def show(value: Any) -> str:
        return shorten(value) if isinstance(value, str) else json.dumps(value)

    width = max((len(k) for k, v in record.items() if not isinstance(v, list)), default=0)
    for key, value in record.items():
        if isinstance(value, list):
            click.echo(f"{indent}{key}:" + ("" if value else " (none)"))
            for item in value:
                if isinstance(item, dict):
                    click.echo(f"{indent}  -")
                    _print_record(item, indent + "    ")
                else:
                    click.echo(f"{indent}  - {show(item)}")
        elif isinstance(value, dict):
            click.echo(f"{indent}{key}:")
            for k, v in value.items():
                click.echo(f"{indent}    {k} = {show(v)}")
        else:
            click.echo(f"{indent}{key.ljust(width)}  {show(value)}")


def _record_command(kind: str) -> Any:
    @click.argument("ref")
    @_url_option()
    @click.option("--data-dir", default=None, help=_DATA_DIR_HELP)
    @click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
    @_token_option
    def command(ref: str, url: str, data_dir: str | None, as_json: bool, token: str | None) -> None:
        from urllib.parse import quote

        ref = _data_ref(ref)
        if data_dir:
            record = _local_record(data_dir, kind, ref)
        else:
            record = _Client(url, token)._get(f"/api/v1/{kind}s/{quote(ref, safe='')}", {})
        if as_json:
            click.echo(json.dumps(record, indent=2))
        else:
            _print_record(record)

    command.__doc__ = (
        f"Show a {kind}'s record. REF is the SHA-256 of its file, a unique prefix of it (8 "
        "digits or more), the path of a local copy of the file, or its IRI.\n\n"
    ) + (
        "Identity, framework, asset paths, each training run (hyperparameters, data, code "
        "version, who and when), evaluation metrics and the models it was derived from."
        if kind == "model"
        else "This version's source, licence and split; every version seen at the same path "
        "or under the same name; what it was derived from and which models used it."
    )
    return command


def _local_record(data_dir: str, kind: str, ref: str) -> dict[str, Any]:
    from provml.core.errors import ProvmlError
    from query.records import dataset_record, model_record

    with _local_store(data_dir) as store:
        try:
            return (model_record if kind == "model" else dataset_record)(store, ref)
        except ProvmlError as exc:
            raise _failed(exc) from None


main.command(name="model")(_record_command("model"))
main.command(name="dataset")(_record_command("dataset"))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@_url_option("URL of the tracker.")
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
@_token_option
def ingest(
    paths: tuple[str, ...],
    url: str,
    quiet: bool,
    fmt: str,
    data_dir: str | None,
    workers: int,
    no_compact: bool,
    allow_partial: bool,
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
    import requests

    from provml.offline import FORMATS, Report, expand, read_lines

    files = expand(list(paths), fmt)
    if not files:
        raise click.ClickException(f"no {FORMATS[fmt].files} files found")
    total = sum(os.path.getsize(f) for f in files)
    if data_dir:
        report = _ingest_direct(files, data_dir, fmt, total, quiet, workers, not no_compact)
        _report(report, allow_partial)
        return
    report = Report(files=len(files))
    http = requests.Session()
    http.headers.update(_auth_headers(token))
    endpoint = url.rstrip("/") + FORMATS[fmt].route
    with click.progressbar(
        length=total,
        label="ingesting",
        show_pos=False,
        show_percent=True,
        file=sys.stderr,
        hidden=quiet,
    ) as bar:
        for path in files:
            for line in read_lines(path, fmt):
                bar.update(len(line.body) + 1)
                where = f"{os.path.basename(path)}:{line.number}"
                if line.error:
                    report.skip(line.reason or "not_json", f"{where}: {line.error}")
                    continue
                try:
                    resp = http.post(
                        endpoint,
                        data=line.body,
                        timeout=(CONNECT_TIMEOUT, 120),
                        headers={"Content-Type": "application/json"},
                    )
                except requests.RequestException as exc:
                    raise click.ClickException(
                        f"cannot reach the tracker at {url}: {exc} (before that: "
                        f"{report.summary()})"
                    ) from None
                if resp.status_code >= 400:
                    report.refuse(
                        _refusal_reason(resp), f"{where}: {resp.status_code} {resp.text[:300]}"
                    )
                    continue
                report.batches += 1
                report.records += int(resp.json().get("records", 0))
    _report(report, allow_partial)


def _refusal_reason(resp: Any) -> str:
    """The service's error code (``invalid_request``, ``too_large`` …), as a direct load
    names it, else the HTTP status."""
    try:
        code = resp.json().get("error")
    except ValueError:
        code = None
    return code if isinstance(code, str) and code else f"http_{resp.status_code}"


def _report(report: Any, allow_partial: bool = False) -> None:
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
) -> Any:
    from provml.offline import load_direct

    with _local_store(data_dir, create=True) as store:
        bar = click.progressbar(
            length=total, label="loading", show_percent=True, file=sys.stderr, hidden=quiet
        )
        with bar:
            report = load_direct(files, store, fmt, progress=bar.update, workers=workers)
        if compact:
            _compact(store, quiet)
        return report


def _compact(store: Any, quiet: bool) -> None:
    import time

    if not quiet:
        click.echo(f"compacting {store.describe()} ...", err=True)
    start = time.perf_counter()
    if store.compact() and not quiet:
        click.echo(f"compacted in {time.perf_counter() - start:.1f} s", err=True)


@main.command()
@click.option(
    "--data-dir",
    default=_env(config.DATA_DIR),
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
    with _local_store(data_dir) as store:
        _compact(store, quiet)


@main.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "provjson", "provxml", "provn", "turtle", "trig", "ntriples",
                       "nquads"]),
    default="auto",
    show_default=True,
    help="The documents' format; auto: by file extension (.json .xml/.provx .provn .ttl "
    ".trig .nt .nq).",
)  # fmt: skip
@click.option(
    "--base-iri",
    default=None,
    help="Base IRI to resolve relative IRIs against (e.g. Taverna runs' Turtle); a "
    "template for several files: {name} is the file's name, {path} its path as given, "
    "{sha256} its SHA-256 (a template that gives two files one base refuses the second). "
    "Default: each document its own base.",
)
@_url_option("URL of the manager (or of `provml serve`).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_token_option
def import_(
    paths: tuple[str, ...],
    fmt: str,
    base_iri: str | None,
    url: str,
    quiet: bool,
    token: str | None,
) -> None:
    """Import W3C PROV documents: PROV-JSON, PROV-XML, PROV-N, or PROV-O as Turtle, TriG,
    N-Triples or N-Quads.

    Each document lands whole or not at all; importing one again adds nothing. A document
    that cannot be read is reported with the reason and the others still go in (exit
    status 1). Each line printed names the document's id, for `provml export
    --document`.

    \b
    provml import run.provn experiment.json
    provml import --base-iri http://example.org/run1/ workflowrun.prov.ttl
    provml import --base-iri 'http://example.org/runs/{name}/' */workflowrun.prov.ttl
    """
    import hashlib
    from urllib.parse import quote

    import requests

    from provml.interop.documents import guess_format

    fields = ("{name}", "{path}", "{sha256}")
    if base_iri and len(paths) > 1 and not any(f in base_iri for f in fields):
        raise click.UsageError(
            "--base-iri would give every file the same base, so that their relative IRIs "
            "name the same nodes: use {name}, {path} or {sha256} in it (e.g. "
            "'http://example.org/runs/{sha256}/'), or leave it out"
        )

    http = requests.Session()
    http.headers.update(_auth_headers(token))
    endpoint = url.rstrip("/") + "/api/v1/import"
    failed = 0
    bases: dict[str, str] = {}  # base → SHA-256 of the file that has it
    with click.progressbar(
        paths, label="importing", file=sys.stderr, hidden=quiet, item_show_func=lambda p: p
    ) as bar:
        for path in bar:
            name = fmt if fmt != "auto" else guess_format(filename=path)
            if name is None:
                click.echo(f"{path}: unknown extension; give --format", err=True)
                failed += 1
                continue
            with open(path, "rb") as f:
                data = f.read()
            params = {"format": name}
            if base_iri:
                digest = hashlib.sha256(data).hexdigest()
                base = base_iri.replace("{name}", quote(os.path.basename(path), safe=""))
                base = base.replace("{path}", quote(path)).replace("{sha256}", digest)
                if bases.setdefault(base, digest) != digest:
                    click.echo(f"{path}: refused: --base-iri gives it the base of another "
                               f"file ({base}); use {{sha256}} or {{path}}", err=True)  # fmt: skip
                    failed += 1
                    continue
                params["base"] = base
            try:
                resp = http.post(endpoint, params=params, data=data,
                                 timeout=(CONNECT_TIMEOUT, 600))  # fmt: skip
            except requests.RequestException as exc:
                raise click.ClickException(f"cannot reach the manager at {url}: {exc}") from None
            if resp.status_code >= 400:
                failed += 1
                click.echo(f"{path}: refused: {_error_text(resp)}", err=True)
                continue
            body = resp.json()
            click.echo(f"{path}: {body['triples']} triples ({name}), document {body['document']}")
    if failed:
        sys.exit(1)


def _error_text(resp: Any) -> str:
    try:
        body = resp.json()
        return _with_details(str(body.get("message", resp.text[:300])), body.get("details"))
    except (ValueError, AttributeError):
        return f"{resp.status_code} {resp.text[:300]}"


def _with_details(message: str, details: Any) -> str:
    """An error's message, then its details one per line (the candidates of an ambiguous
    hash prefix, a batch's problems), at most 20 of them."""
    if not isinstance(details, list) or not details:
        return message
    lines = [f"  {d}" for d in details[:20]]
    if len(details) > 20:
        lines.append(f"  … and {len(details) - 20} more")
    return "\n".join([message, *lines])


def _failed(exc: Any) -> click.ClickException:
    """A ProvmlError as the CLI says it: its message and its details."""
    return click.ClickException(_with_details(exc.message, exc.details))


@main.command()
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
@_url_option("URL of the query service (or of `provml serve`).")
@click.option(
    "--data-dir",
    default=None,
    help="Export from an embedded store directly instead of a server (it must not be in "
    "use by a running server).",
)
@_token_option
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
        ident = _data_ref(ident)
    if data_dir:
        body, unexpressed, sample = _local_export(data_dir, scope, ident, fmt, strict)
    else:
        import requests

        params = {"scope": scope, "format": fmt, "strict": str(strict).lower()}
        try:
            resp = requests.get(
                url.rstrip("/") + "/api/v1/export",
                params=params | ({"id": ident} if ident else {}),
                headers=_auth_headers(token),
                timeout=(CONNECT_TIMEOUT, 600),
            )
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot reach the query service at {url}: {exc}") from None
        if resp.status_code >= 400:
            raise click.ClickException(_error_text(resp))
        body = resp.content
        unexpressed = int(resp.headers.get("Provml-Unexpressed", "0"))
        sample = resp.headers.get("Provml-Unexpressed-Sample", "").split(" ; ")
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

    with _local_store(data_dir) as store:
        quads = ex.collect(store, scope, ident)
        done = ex.export(quads, fmt, strict=strict, prefixes=ex.declared_prefixes(store))
    return done.data, done.unexpressed, done.sample


@main.command(name="config")
def show_config() -> None:
    """List the PROVML_* environment variables, their values and defaults."""
    for s in config.ALL:
        current = os.environ.get(s.name)
        shown = "(unset)" if current is None else "(set)" if s.secret else repr(current)
        click.echo(f"{s.name:24} {shown:12} default {s.default!r}\n    {s.help}")


@main.command()
@click.option(
    "--scopes",
    default="capture",
    show_default=True,
    help="Comma-separated scopes: capture, read, admin.",
)
@click.option("--name", default=None, help="The token's name, which the audit log records.")
def token(scopes: str, name: str | None) -> None:
    """Make a new random access token.

    Prints the token (give it to the client: PROVML_TOKEN) and two lines for the
    server's tokens file (PROVML_TOKENS_FILE): one with the token, one with only its
    SHA-256, so that the file holds no secret. docs/security.md explains the scopes.
    """
    from provml.core.errors import ProvmlError
    from provml.web import auth

    if name is not None and not auth.valid_name(name):
        raise click.UsageError(f"--name: {auth.NAME_RULE}")
    scopes = ",".join(re.split(r"[\s,]+", scopes.strip()))  # "read, capture", "read capture"
    secret = auth.new_token()
    line = f"{secret} {scopes}" + (f" {name}" if name else "")
    try:
        auth.parse_lines([line], where="--scopes/--name")
    except ProvmlError as exc:
        # the parser names a line of a tokens file; here there is only the command line
        raise click.UsageError(exc.message.replace("--scopes/--name: line 1: ", "")) from None
    hashed = f"sha256:{auth.digest(secret).hex()} {scopes}" + (f" {name}" if name else "")
    click.echo(f"token:                       {secret}")
    click.echo(f"tokens file line:            {line}")
    click.echo(f"tokens file line (hash only): {hashed}")


if __name__ == "__main__":  # pragma: no cover
    main()
