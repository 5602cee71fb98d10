"""The provml command run in this process by click's CliRunner: help, settings, bad
input, an embedded store made by the test, and a real server in a thread."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from provml.cli import main
from provml.core import config
from provml.web import auth
from tests.cli.conftest import LiveServer, serve
from tests.cli.test_client import TURTLE
from tests.conftest import SHA_M, free_port, full_records, make_batch

COMMANDS = {
    "serve", "demo", "query", "ask", "model", "dataset", "ingest", "compact", "reindex",
    "import",
    "export", "report", "config", "token", "run",
}  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's PROVML_* variables must not change what a command means."""
    for setting in config.ALL:
        monkeypatch.delenv(setting.name, raising=False)


def run(*args: str, **kwargs: object) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="provml", **kwargs)  # type: ignore[arg-type]


def nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}"


# --- help and settings ---------------------------------------------------------------


def test_the_group_lists_every_command() -> None:
    assert set(main.commands) == COMMANDS
    result = run("--help")
    assert result.exit_code == 0
    assert result.output.startswith("Usage: provml [OPTIONS] COMMAND [ARGS]...")
    listed = result.output.split("Commands:\n", 1)[1]
    assert {line.split()[0] for line in listed.splitlines() if line.strip()} == COMMANDS
    assert run("-h").output == result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_of_each_command(name: str) -> None:
    result = run(name, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: provml {name} ")
    command = main.commands[name]
    words = " ".join(result.output.split())  # as wrapped to the terminal
    assert " ".join((command.help or "").split("\n\n")[0].split()) in words
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.opts[-1] in result.output, (name, param.opts)


def test_version() -> None:
    from provml import __version__

    assert run("--version").output == f"provml, version {__version__}\n"


def test_config_lists_the_settings_and_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVML_PORT", "5001")
    monkeypatch.setenv("PROVML_TOKEN", "a-secret-token-value")
    result = run("config")
    assert result.exit_code == 0
    assert "a-secret-token-value" not in result.output
    lines = result.output.splitlines()
    names = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert names == [s.name for s in config.ALL]
    port = next(line for line in lines if line.startswith("PROVML_PORT "))
    assert "'5001'" in port
    token = next(line for line in lines if line.startswith("PROVML_TOKEN "))
    assert "(set)" in token
    url = next(line for line in lines if line.startswith("PROVML_URL "))
    assert "(unset)" in url


def test_a_bad_setting_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVML_PORT", "not-a-port")
    result = run("serve")
    assert result.exit_code == 2
    assert "PROVML_PORT" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_token_makes_a_token_and_its_lines() -> None:
    result = run("token", "--scopes", "read, capture", "--name", "ci")
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.output.splitlines())
    secret = lines["token"].strip()
    assert lines["tokens file line"].strip() == f"{secret} read,capture ci"
    hashed = lines["tokens file line (hash only)"].strip()
    assert hashed == f"sha256:{auth.digest(secret).hex()} read,capture ci"
    assert auth.load(None, hashed).check(secret) is not None


def test_token_refuses_bad_scopes_and_names() -> None:
    result = run("token", "--scopes", "everything")
    assert result.exit_code == 2 and "scopes are among capture, read, admin" in result.output
    result = run("token", "--name", "two words")
    assert result.exit_code == 2 and "--name:" in result.output


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ftp://example.org", "is not an http:// or https:// URL (e.g. http://127.0.0.1:5000)"),
        ("127.0.0.1:5000", "is not an http:// or https:// URL"),
        ("http://[::1", "is not a URL"),
    ],
)
def test_a_bad_url_is_a_usage_error(url: str, said: str) -> None:
    for args in (["query", "ASK {}"], ["ask", "runs"], ["model", SHA_M], ["export"]):
        result = run(*args, "--url", url)
        assert result.exit_code == 2, (args, result.output)
        assert "Invalid value for '--url'" in result.output
        assert said in result.output


def test_a_bad_url_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVML_URL", "example.org")
    result = run("ask", "runs")
    assert result.exit_code == 2 and "is not an http:// or https:// URL" in result.output


def test_a_missing_query() -> None:
    result = run("query", "--url", nowhere())
    assert result.exit_code == 2
    assert "give a query as an argument or with --file" in result.output


def test_ask_parameters_are_key_value() -> None:
    result = run("ask", "training-data", "model", "--url", nowhere())
    assert result.exit_code == 2
    assert "parameters are key=value, got 'model'" in result.output


def test_export_takes_one_selection() -> None:
    result = run("export", "--run", "x", "--workflow", "y", "--url", nowhere())
    assert result.exit_code == 2 and "give one of --model/--entity" in result.output
    result = run("export", "--model", "x", "--entity", "y", "--url", nowhere())
    assert result.exit_code == 2 and "give --model or --entity, not both" in result.output


def test_no_server_there(tmp_path: Path) -> None:
    url = nowhere()
    log = tmp_path / "a.jsonl"
    log.write_text(json.dumps(make_batch(full_records())) + "\n")
    doc = tmp_path / "doc.ttl"
    doc.write_bytes(TURTLE)
    expected = {
        ("query", "ASK {}"): f"Error: cannot reach {url}: ",
        ("ask", "runs"): f"Error: cannot reach {url}: ",
        ("model", SHA_M): f"Error: cannot reach {url}: ",
        ("dataset", SHA_M): f"Error: cannot reach {url}: ",
        ("ingest", "--quiet", str(log)): f"Error: cannot reach the tracker at {url}: ",
        ("import", "--quiet", str(doc)): f"Error: cannot reach the manager at {url}: ",
        ("export",): f"Error: cannot reach the query service at {url}: ",
    }
    for args, said in expected.items():
        result = run(*args, "--url", url)
        assert result.exit_code == 1, (args, result.output)
        assert said in result.output, (args, result.output)
    ingest = run("ingest", "--quiet", str(log), "--url", url)
    assert ingest.output.rstrip().endswith(
        "(before that: ingested 0 records in 0 batches from 1 files)"
    )
    demo = run("demo", "--url", url, "--workdir", str(tmp_path / "demo"))
    assert demo.exit_code == 1
    assert demo.output == (
        f"Error: no provml service answers at {url} (ConnectionError): start one with "
        "`provml serve`, or give its --url\n"
    )
    assert not (tmp_path / "demo").exists()  # nothing ran


def test_no_embedded_store_there(tmp_path: Path) -> None:
    for args in (["query", "ASK {}"], ["ask", "runs"], ["model", SHA_M], ["export"]):
        result = run(*args, "--data-dir", str(tmp_path / "none"))
        assert result.exit_code == 1, args
        assert f"no embedded store in {tmp_path / 'none'}" in result.output


# --- an embedded store ---------------------------------------------------------------


def test_query_an_embedded_store(data_dir: Path) -> None:
    text = "SELECT ?model WHERE { ?model a provml:Model }"
    result = run("query", text, "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "model"
    assert lines[2] == f"id:data/sha256/{SHA_M}"
    assert lines[-1] == "(1 row)"
    as_json = json.loads(run("query", "--json", text, "--data-dir", str(data_dir)).output)
    assert as_json["results"]["bindings"][0]["model"]["value"].endswith(SHA_M)
    assert run("query", "ASK { ?m a provml:Model }", "--data-dir", str(data_dir)).output == "yes\n"
    assert run("query", "ASK { ?m a provml:Nothing }", "--data-dir", str(data_dir)).output == "no\n"
    graph = run("query", "CONSTRUCT WHERE { ?m a provml:Model }", "--data-dir", str(data_dir))
    assert "@prefix provml:" in graph.output and SHA_M in graph.output


def test_query_from_a_file(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "models.rq"
    path.write_text("SELECT (COUNT(*) AS ?n) WHERE { ?m a provml:Model }")
    result = run("query", "-f", str(path), "--data-dir", str(data_dir))
    assert result.output.splitlines()[2] == "1"
    piped = run("query", "-f", "-", "--data-dir", str(data_dir), input=path.read_text())
    assert piped.output == result.output


def test_a_bad_query_on_an_embedded_store(data_dir: Path) -> None:
    result = run("query", "SELECT nonsense", "--data-dir", str(data_dir))
    assert result.exit_code == 1 and result.output.startswith("Error: ")


def test_ask_and_records_on_an_embedded_store(data_dir: Path) -> None:
    result = run("ask", "training-data", f"model={SHA_M[:10]}", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert "c" * 64 in result.output and "(1 row)" in result.output
    record = json.loads(run("model", SHA_M[:10], "--json", "--data-dir", str(data_dir)).output)
    assert record["sha256"] == SHA_M and len(record["trainings"]) == 1


# --- a real server in this process ---------------------------------------------------


def test_ask_a_server(live: LiveServer) -> None:
    result = run("ask", "training-data", f"model={SHA_M}", "--url", live.url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["data", "sha256", "version", "split", "path", "role",
                                "training", "run"]  # fmt: skip
    assert "model" not in lines[0].split()  # the parameter's column is left out
    assert f"id:data/sha256/{'c' * 64}" in lines[2]
    assert lines[-1] == "(2 rows)"
    as_json = json.loads(run("ask", "training-data", f"model={SHA_M}", "--json",
                             "--url", live.url).output)  # fmt: skip
    assert {b["sha256"]["value"] for b in as_json["results"]["bindings"]} == {"c" * 64}


def test_ask_pages(live: LiveServer) -> None:
    first = run("ask", "runs", "--limit", "1", "--url", live.url)
    assert first.exit_code == 0
    assert first.stdout.splitlines()[-1] == "(1 row)"
    assert first.stderr == "(rows 1-1; more with --offset 1)\n"
    last = run("ask", "runs", "--limit", "1", "--offset", "1", "--url", live.url)
    assert last.exit_code == 0 and last.stderr == ""
    assert last.stdout.splitlines()[2] != first.stdout.splitlines()[2]


def test_ask_lists_the_questions() -> None:
    result = run("ask")
    assert result.exit_code == 0
    assert "training-data model=<data>" in result.output
    assert "runs" in [line.split()[0] for line in result.output.splitlines() if line[:1] != " "]


def test_what_the_server_refuses_is_said(live: LiveServer) -> None:
    result = run("ask", "training-data", "model=" + "9" * 10, "--url", live.url)
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: 404: no data in the graph has a SHA-256 starting with 9999999999"
    )
    bad = run("query", "SELECT nonsense", "--url", live.url)
    assert bad.exit_code == 1 and bad.output.startswith("Error: 400: ")
    update = run("query", "INSERT DATA { <a:b> <a:c> <a:d> }", "--url", live.url)
    assert update.exit_code == 1 and "is a SPARQL update" in update.output


def test_a_model_record_from_a_server(live: LiveServer, tmp_path: Path) -> None:
    result = run("model", SHA_M[:8], "--url", live.url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["model", f"id:data/sha256/{SHA_M}"]
    assert any(line.strip() == "lr = 0.1" for line in lines)  # the hyperparameters
    assert any(line.startswith("trainings:") for line in lines)
    as_json = json.loads(run("model", SHA_M[:8], "--json", "--url", live.url).output)
    assert as_json["framework"] == "sklearn" and len(as_json["trainings"]) == 2
    local = tmp_path / "not-there"
    missing = run("dataset", str(local), "--url", live.url)  # no such file: sent as given
    assert missing.exit_code == 1 and missing.output.startswith("Error: 4")


def test_ingest_to_a_server(live: LiveServer, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    good = json.dumps(make_batch(full_records(t0=1_700_000_200.0)))
    (logs / "a.jsonl").write_text(good + "\n" + '{"provml": 1}\n' + '{"provml": 1, "ba')
    result = run("ingest", "--quiet", str(logs), "--url", live.url)
    assert result.exit_code == 1
    assert result.stdout == (
        f"ingested {len(full_records())} records in 1 batches from 1 files; skipped 1 line "
        "(torn_line: 1); refused 1 batch (invalid_request: 1)\n"
    )
    assert "refused a.jsonl:2: 400 " in result.stderr
    assert "provml ingest: not everything was loaded (--allow-partial to accept)" in result.stderr
    again = run("ingest", "--quiet", "--allow-partial", str(logs), "--url", live.url)
    assert again.exit_code == 0
    runs = json.loads(run("ask", "runs", "--json", "--url", live.url).output)
    assert len(runs["results"]["bindings"]) == 3  # the replayed batch added nothing


def test_import_and_export_with_a_server(live: LiveServer, tmp_path: Path) -> None:
    doc = tmp_path / "cake.ttl"
    doc.write_bytes(TURTLE)
    broken = tmp_path / "broken.ttl"
    broken.write_text("this is no turtle")
    unknown = tmp_path / "what.ever"
    unknown.write_text("?")
    result = run("import", "--quiet", str(doc), str(broken), str(unknown), "--url", live.url)
    assert result.exit_code == 1
    done = result.stdout.strip()
    assert done.startswith(f"{doc}: 3 triples (turtle), document ")
    assert f"{broken}: refused: " in result.stderr
    assert f"{unknown}: unknown extension; give --format" in result.stderr
    document = done.rsplit(" ", 1)[1]
    out = tmp_path / "out.nt"
    exported = run("export", "--document", document, "--format", "ntriples", "-o", str(out),
                   "--url", live.url)  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert "<http://example.org/cake>" in out.read_text()
    refused = run("export", "--run", "no-such-run", "--url", live.url)
    assert refused.exit_code == 1  # the service's message, without the status
    assert refused.output == "Error: 'no-such-run' is not an IRI or the SHA-256 of a file\n"
    whole = run("export", "--format", "ntriples", "--url", live.url)
    assert whole.exit_code == 0 and SHA_M in whole.stdout and "example.org/cake" in whole.stdout


def test_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = auth.new_token()
    srv = serve(tmp_path, tokens=auth.load(None, f"{secret} read tester"))
    try:
        refused = run("ask", "runs", "--url", srv.url)
        assert refused.exit_code == 1 and refused.output.startswith("Error: 401: ")
        assert run("ask", "runs", "--url", srv.url, "--token", secret).exit_code == 0
        monkeypatch.setenv("PROVML_TOKEN", secret)
        assert run("ask", "runs", "--url", srv.url).exit_code == 0
        monkeypatch.setenv("PROVML_URL", srv.url)
        assert run("model", SHA_M).exit_code == 0
    finally:
        srv.stop()
