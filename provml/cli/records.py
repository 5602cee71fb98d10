"""Reading the graph: SPARQL queries (``provml query``), named questions (``provml
ask``), and the records of models and datasets (``provml model``, ``provml dataset``), from
a server or straight from an embedded store."""

from __future__ import annotations

import json
from typing import Any

import click

from provml.cli.common import (
    DATA_DIR_HELP,
    client_errors,
    data_ref,
    failed,
    http_client,
    local_store,
    token_option,
    url_option,
)


@click.command()
@click.argument("query_text", required=False)
@click.option(
    "-f",
    "--file",
    "query_file",
    type=click.File("r"),
    help="Read the query from a file ('-' for stdin).",
)
@url_option()
@click.option(
    "--data-dir",
    default=None,
    help="Query an embedded store directly instead of a server (it must not be "
    "in use by a running server).",
)
@click.option("--json", "as_json", is_flag=True, help="Print SPARQL JSON results.")
@token_option
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
    from provml.cli.table import render

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
    if data_dir:
        results = _local_query(data_dir, query_text)
    else:
        with http_client(url, token) as service, client_errors():
            results = service.sparql(query_text)
    if isinstance(results, str):  # a graph, as Turtle
        click.echo(results, nl=False)
    else:
        click.echo(json.dumps(results, indent=2) if as_json else render(results))


def _local_query(data_dir: str, text: str) -> dict[str, Any] | str:
    import pyoxigraph

    with local_store(data_dir) as store:
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


@click.command()
@click.argument("name", required=False)
@click.argument("params", nargs=-1)
@url_option()
@click.option("--data-dir", default=None, help=DATA_DIR_HELP)
@click.option("--limit", type=click.IntRange(1, 100_000), help="Rows per page (default 1,000).")
@click.option("--offset", type=click.IntRange(0), default=0, help="Rows to skip.")
@click.option("--json", "as_json", is_flag=True, help="Print SPARQL JSON results.")
@token_option
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
        values[key] = data_ref(value) if kinds.get(key) == "data" else value
    paging = {"offset": str(offset)} | ({"limit": str(limit)} if limit else {})
    if data_dir:
        result, more = _local_ask(data_dir, name, values | paging)
    else:
        with http_client(url, token) as service, client_errors():
            result, more = service.ask_page(name, values | paging)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        from provml.cli.table import render

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

    with local_store(data_dir) as store:
        try:
            page = pages.ask(store, questions.get(name, store.dialect), values)
            body = solutions_json(page.variables, page)
        except ProvmlError as exc:
            raise failed(exc) from None
    return json.loads(body), page.more


def _print_record(record: dict[str, Any], indent: str = "") -> None:
    """A record as aligned "key: value" lines, lists as indented tables."""
    from provml.cli.table import shorten

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
    @url_option()
    @click.option("--data-dir", default=None, help=DATA_DIR_HELP)
    @click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
    @token_option
    def command(ref: str, url: str, data_dir: str | None, as_json: bool, token: str | None) -> None:
        ref = data_ref(ref)
        if data_dir:
            record = _local_record(data_dir, kind, ref)
        else:
            with http_client(url, token) as service, client_errors():
                record = service.record(kind, ref)
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

    with local_store(data_dir) as store:
        try:
            return (model_record if kind == "model" else dataset_record)(store, ref)
        except ProvmlError as exc:
            raise failed(exc) from None


model = click.command(name="model")(_record_command("model"))
dataset = click.command(name="dataset")(_record_command("dataset"))
