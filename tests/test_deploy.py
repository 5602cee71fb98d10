"""The deployment files agree with the code: docker-compose.yml, the Dockerfile and
docs/deploy.md.

Every command is parsed by the real ``provml`` click commands (option types, choices and
all), as the container would run it; no container and no server is started.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from click.testing import CliRunner

import provml.server
from provml import config
from provml.cli import main

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

#: the components that open the store (only one process may open an embedded store)
STORE_COMPONENTS = frozenset({"manager", "query"})
LOOPBACK = "127.0.0.1"


# --- reading the files ---------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE.get("services") or {}


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    result = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        result.append((instruction.upper(), args.strip()))
    return result


def instructions(name: str) -> list[str]:
    return [args for instruction, args in dockerfile() if instruction == name]


def exec_form(args: str) -> list[str]:
    """A JSON (exec form) argument list; the shell form is not accepted here."""
    assert args.startswith("["), f"use the exec form (a JSON list), not {args!r}"
    value = json.loads(args)
    assert isinstance(value, list), value
    assert all(isinstance(a, str) for a in value), value
    return value


def last(name: str) -> str:
    found = instructions(name)
    assert found, f"the Dockerfile has no {name}"
    return found[-1]  # as Docker does: the last one wins


def image_env() -> dict[str, str]:
    """The environment the Dockerfile's ENV instructions give every container."""
    env: dict[str, str] = {}
    for args in instructions("ENV"):
        words = shlex.split(args)
        if words and "=" not in words[0]:  # legacy form: ENV KEY value
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, sep, value = word.partition("=")
            assert sep, f"ENV {args!r}"
            env[key] = value
    return env


def service_env(name: str) -> dict[str, str]:
    env = image_env()
    declared = SERVICES[name].get("environment") or {}
    if isinstance(declared, list):
        declared = dict(item.partition("=")[::2] for item in declared)
    env.update({str(k): "" if v is None else str(v) for k, v in declared.items()})
    return env


def command(name: str) -> list[str]:
    """What the service runs after the ENTRYPOINT: its ``command``, else the image's CMD."""
    service = SERVICES[name]
    if "command" not in service:
        return exec_form(last("CMD"))
    cmd = service["command"]
    assert isinstance(cmd, list), f"{name}: give the command as a list (exec form)"
    assert all(isinstance(a, str) for a in cmd), f"{name}: every argument must be a string"
    return cmd


# --- parsing with the real CLI -------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's PROVML_* variables must not change what a command means."""
    for setting in config.ALL:
        monkeypatch.delenv(setting.name, raising=False)


def parse(argv: list[str], env: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    """``provml ARGV`` parsed by the real click command: its name and its parameters.

    Only parsing: nothing is invoked. ``env`` is the container's environment (the
    defaults of the options read PROVML_* variables).
    """
    assert argv, "empty command"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        name, *rest = argv
        parent = click.Context(main, info_name="provml")
        cmd = main.get_command(parent, name)
        assert cmd is not None, f"provml has no command {name!r} (in {argv})"
        try:
            ctx = cmd.make_context(name, list(rest), parent=parent)
        except click.ClickException as exc:
            pytest.fail(f"provml {shlex.join(argv)}: {exc.format_message()}")
        return name, dict(ctx.params)


def serve_params(name: str) -> dict[str, Any]:
    cmd, params = parse(command(name), service_env(name))
    assert cmd == "serve", f"{name} runs `provml {cmd}`, not `provml serve`"
    return params


def components(params: dict[str, Any]) -> frozenset[str]:
    return frozenset(params["components"] or provml.server.COMPONENTS)


def opens_store(params: dict[str, Any]) -> bool:
    return bool(components(params) & STORE_COMPONENTS)


# --- compose: shape and commands -----------------------------------------------------


def test_compose_file_is_a_compose_specification_file() -> None:
    assert "version" not in COMPOSE, "the Compose specification has no top-level version"
    assert {"store", "tracker", "all-in-one"} <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_is_built_from_the_dockerfile(name: str) -> None:
    service = SERVICES[name]
    assert service.get("build") == ".", name
    assert service.get("image") == "provml:latest", name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_command_parses(name: str) -> None:
    params = serve_params(name)
    assert params["host"] == "0.0.0.0", f"{name} must listen on all addresses of its container"
    assert params["store_url"] is None
    assert not params["run_demo"], "--demo needs scikit-learn, which the image does not have"


def test_split_layout() -> None:
    assert components(serve_params("store")) == {"manager", "query"}
    assert components(serve_params("tracker")) == {"tracker"}
    assert components(serve_params("all-in-one")) == set(provml.server.COMPONENTS)
    assert SERVICES["all-in-one"].get("profiles") == ["single"]
    assert "profiles" not in SERVICES["store"]
    assert "profiles" not in SERVICES["tracker"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_command_assembles(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command runs through `provml serve` up to the server loop: the components go
    together (a tracker alone has its manager URL, …) and the routes are where expected."""
    served: list[Any] = []

    def fake_serve(app: Any, host: str, port: int, **kwargs: Any) -> None:
        served.append(app)
        provml.server.close_app(app)

    def no_server(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the test would have started a server")

    monkeypatch.setattr(provml.server, "serve", fake_serve)
    monkeypatch.setattr("waitress.server.create_server", no_server)
    cmd, *args = command(name)
    assert cmd == "serve"
    for key, value in service_env(name).items():
        monkeypatch.setenv(key, value)
    # the serve command itself (not the group, which would configure logging); the
    # store goes to tmp_path: of repeated options the last one wins
    result = CliRunner().invoke(main.commands["serve"], [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(served) == 1
    rules = {rule.rule for rule in served[0].url_map.iter_rules()}
    wanted = components(serve_params(name))
    assert "/healthz" in rules
    assert ("/sparql" in rules) == ("query" in wanted)
    if "manager" in wanted:
        prefix = "/manager" if "tracker" in wanted else ""
        assert prefix + "/api/v1/batches" in rules
    if "tracker" in wanted:
        assert "/api/v1/batches" in rules


# --- compose: how the services reach each other --------------------------------------


def test_tracker_forwards_to_a_manager_service() -> None:
    # a tracker without a manager in its process forwards over HTTP
    trackers = [
        name
        for name in SERVICES
        if (components(serve_params(name)) & {"tracker", "manager"}) == {"tracker"}
    ]
    assert trackers == ["tracker"]
    for name in trackers:
        params = serve_params(name)
        url = urlsplit(params["manager_url"] or "")
        assert url.scheme == "http", f"{name}: --manager-url {params['manager_url']!r}"
        target = url.hostname
        assert target in SERVICES, f"{name}: --manager-url names no service ({target!r})"
        target_params = serve_params(target)
        assert "manager" in components(target_params), f"{target} runs no manager"
        assert url.port == target_params["port"], f"{target} listens on {target_params['port']}"
        # a manager sharing its process with a tracker is mounted under /manager
        expected_path = "/manager" if "tracker" in components(target_params) else ""
        assert url.path.rstrip("/") == expected_path
        assert not set(SERVICES[target].get("profiles") or []) - set(
            SERVICES[name].get("profiles") or []
        ), f"{name} depends on {target}, which only runs under a profile"
        depends = SERVICES[name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on in the long form, with conditions"
        assert depends.get(target) == {"condition": "service_healthy"}
        assert "healthcheck" in SERVICES[target], f"{target} needs a healthcheck"


def volume_mounts(name: str) -> list[tuple[str, str]]:
    """(source, target) of each volume of a service; source is a volume name or a path."""
    mounts = []
    for entry in SERVICES[name].get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            parts = str(entry).split(":")
            assert len(parts) in (2, 3), f"{name}: volume {entry!r}"
            mounts.append((parts[0], parts[1]))
    return mounts


def is_under(path: str, directory: str) -> bool:
    return PurePosixPath(directory) in (PurePosixPath(path), *PurePosixPath(path).parents)


def test_one_store_process_per_volume() -> None:
    """Single writer: exactly one service opens the store in each volume, and nothing
    else mounts that volume."""
    owners: dict[str, list[str]] = defaultdict(list)
    for name in SERVICES:
        params = serve_params(name)
        if not opens_store(params):
            continue
        data_dir = params["data_dir"]
        assert PurePosixPath(data_dir).is_absolute(), f"{name}: --data-dir {data_dir!r}"
        holding = [src for src, target in volume_mounts(name) if is_under(data_dir, target)]
        assert len(holding) == 1, f"{name}: the store ({data_dir}) must be on one volume"
        owners[holding[0]].append(name)
        assert "manager" in components(params), f"{name} opens a store it cannot write"
        service = SERVICES[name]
        assert service.get("scale", 1) == 1, f"{name} must not be scaled"
        assert (service.get("deploy") or {}).get("replicas", 1) == 1, f"{name}: replicas"
    for volume, names in owners.items():
        assert len(names) == 1, f"the store in volume {volume} is opened by {names}"
        mounted_by = {n for n in SERVICES for src, _ in volume_mounts(n) if src == volume}
        assert mounted_by == set(names), f"volume {volume} is mounted by {sorted(mounted_by)}"
    declared = set(COMPOSE.get("volumes") or {})
    assert declared == set(owners), "each named volume holds exactly one store"


# --- compose: ports and health -------------------------------------------------------

PORT_RE = re.compile(
    r"^(?:(?P<ip>\[[^\]]+\]|[^:\[\]]+):)?(?:(?P<published>[\d-]*):)?(?P<target>\d+)"
    r"(?:/(?P<proto>tcp|udp))?$"
)


def published_ports(name: str) -> list[tuple[str | None, str | None, int]]:
    """(host address, host port, container port) of each published port."""
    found = []
    for entry in SERVICES[name].get("ports") or []:
        if isinstance(entry, dict):
            found.append(
                (
                    entry.get("host_ip"),
                    None if entry.get("published") is None else str(entry["published"]),
                    int(entry["target"]),
                )
            )
            continue
        assert isinstance(entry, str), f"{name}: quote the port {entry!r} (YAML reads a:b oddly)"
        match = PORT_RE.match(entry)
        assert match, f"{name}: port {entry!r}"
        found.append((match["ip"], match["published"], int(match["target"])))
    return found


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_published_ports_are_on_loopback(name: str) -> None:
    params = serve_params(name)
    for host_ip, published, target in published_ports(name):
        assert host_ip == LOOPBACK, f"{name}: port {target} is published on {host_ip or 'all'}"
        assert published, f"{name}: give the host port of {target} (not a random one)"
        assert target == params["port"], f"{name} listens on {params['port']}, not {target}"


def test_host_ports() -> None:
    hosts = {name: [p for _, p, _ in published_ports(name)] for name in SERVICES}
    assert hosts["tracker"] == ["5000"]
    assert hosts["store"] == ["5001"]
    assert "query" in components(serve_params("store")), "the SPARQL endpoint is on store"
    every = [p for ports in hosts.values() for p in ports]
    assert len(every) == len(set(every)), f"two services publish the same host port: {hosts}"


def test_store_has_a_healthcheck_on_healthz() -> None:
    check = SERVICES["store"]["healthcheck"]
    test = check["test"]
    assert isinstance(test, list), test
    assert test[0] == "CMD"
    assert test[1] == "python", "the slim image has no curl"
    port = serve_params("store")["port"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(test)


# --- the Dockerfile ------------------------------------------------------------------


def test_dockerfile() -> None:
    assert instructions("FROM") == ["python:3.11-slim"]
    assert exec_form(last("ENTRYPOINT")) == ["provml"]
    user = last("USER")
    assert user.split(":")[0] not in {"root", "0"}, "run as an unprivileged user"
    order = [instruction for instruction, _ in dockerfile()]
    assert order.index("USER") < order.index("ENTRYPOINT")
    assert "5000" in " ".join(instructions("EXPOSE")).split()
    volumes = [v for args in instructions("VOLUME") for v in exec_form(args)]
    assert volumes == ["/data"]
    assert any("pip install" in args for args in instructions("RUN"))


def test_dockerfile_default_cmd_parses() -> None:
    cmd, params = parse(exec_form(last("CMD")), image_env())
    assert cmd == "serve"
    assert exec_form(last("CMD")) == [
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "5000",
        "--data-dir",
        "/data",
    ]
    assert components(params) == set(provml.server.COMPONENTS)
    assert params["host"] == "0.0.0.0"
    assert str(params["port"]) in " ".join(instructions("EXPOSE")).split()
    assert params["data_dir"] == "/data"


def test_dockerfile_healthcheck_asks_healthz_with_python() -> None:
    args = last("HEALTHCHECK")
    _, sep, cmd = args.partition("CMD ")
    assert sep, f"HEALTHCHECK {args!r}"
    argv = exec_form(cmd.strip())
    assert argv[0] == "python"
    assert "curl" not in args
    _, params = parse(exec_form(last("CMD")), image_env())
    assert f"127.0.0.1:{params['port']}/healthz" in " ".join(argv)


def test_image_environment_names_real_settings() -> None:
    names = {s.name for s in config.ALL}
    for key in image_env():
        if key.startswith("PROVML_"):
            assert key in names, f"the Dockerfile sets {key}, which provml does not read"
    for name in SERVICES:
        for key in service_env(name):
            if key.startswith("PROVML_"):
                assert key in names, f"{name} sets {key}, which provml does not read"


def test_dockerignore_keeps_local_state_out() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "provml-data", "prov-logs"} <= entries
    assert "pyproject.toml" not in entries
    for package in ("provml", "capture_lib", "tracker", "manager", "query"):
        assert package not in entries


# --- docs/deploy.md ------------------------------------------------------------------

VARIABLE_RE = re.compile(r"PROVML_[A-Z0-9][A-Z0-9_]*")


def test_deploy_doc_mentions_only_real_variables() -> None:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    names = {s.name for s in config.ALL}
    mentioned = set(VARIABLE_RE.findall(text))
    assert mentioned, "docs/deploy.md mentions no PROVML_* variable"
    assert mentioned <= names, f"not in provml.config.ALL: {sorted(mentioned - names)}"


def test_deploy_doc_tables_every_variable() -> None:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(PROVML_[A-Z0-9_]+)` \|", text, flags=re.MULTILINE))
    assert rows == {s.name for s in config.ALL}


def doc_serve_commands() -> list[list[str]]:
    """Every `provml serve …` line of the shell blocks of docs/deploy.md, as argv."""
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"^ *```sh\n(.*?)^ *```", text, flags=re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["provml", "serve"]:
                commands.append(words[1:])
    return commands


def test_deploy_doc_serve_commands_parse() -> None:
    commands = doc_serve_commands()
    assert len(commands) >= 3
    for argv in commands:
        cmd, _ = parse(argv)
        assert cmd == "serve"


def test_deploy_doc_split_commands_agree() -> None:
    parsed = [parse(argv)[1] for argv in doc_serve_commands()]
    stores = [p for p in parsed if components(p) == {"manager", "query"}]
    trackers = [p for p in parsed if components(p) == {"tracker"}]
    assert len(stores) == 1
    assert len(trackers) == 1
    store, tracker = stores[0], trackers[0]
    url = urlsplit(tracker["manager_url"])
    assert url.hostname == "127.0.0.1"
    assert url.port == store["port"] == 5001
    assert tracker["port"] == 5000
    assert os.path.normpath(store["data_dir"]) == "provml-data"
