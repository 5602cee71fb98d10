"""The deployment files agree with the code: docker-compose.yml, the Dockerfiles and
docs/deploy.md.

Every provml command is parsed by the real ``provml`` click commands (option types,
choices and all), as the container would run it; `docker-compose config` checks the
Compose file against the Compose specification (no Docker engine needed). No container
is started; only the Oxigraph health check runs, against a real Oxigraph server.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from click.testing import CliRunner

import provml.server
from provml.cli import main
from provml.core import config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
OXIGRAPH_CONTEXT = "deploy/oxigraph"
OXIGRAPH_DOCKERFILE = ROOT / OXIGRAPH_CONTEXT / "Dockerfile"
PROVML_IMAGE = "provml:latest"

#: the components that open the store (only one process may open an embedded store)
STORE_COMPONENTS = frozenset({"manager", "query"})
LOOPBACK = "127.0.0.1"
#: the Compose profiles and their services; every other service runs by default
PROFILES = {
    "single": ["all-in-one"],
    "broker": ["redis", "broker-manager", "broker-tracker"],
}
#: the broker's Redis as the services of the `broker` profile reach it
BROKER_URL = "redis://redis:6379/0"
REDIS_IMAGE = "redis:7"


# --- reading the files ---------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE.get("services") or {}


def dockerfile(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """A Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
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


def instructions(name: str, path: Path = DOCKERFILE) -> list[str]:
    return [args for instruction, args in dockerfile(path) if instruction == name]


def exec_form(args: str) -> list[str]:
    """A JSON (exec form) argument list; the shell form is not accepted here."""
    assert args.startswith("["), f"use the exec form (a JSON list), not {args!r}"
    value = json.loads(args)
    assert isinstance(value, list), value
    assert all(isinstance(a, str) for a in value), value
    return value


def last(name: str, path: Path = DOCKERFILE) -> str:
    found = instructions(name, path)
    assert found, f"{path.relative_to(ROOT)} has no {name}"
    return found[-1]  # as Docker does: the last one wins


def build_arg_default(name: str, path: Path) -> str:
    for args in instructions("ARG", path):
        key, sep, value = args.partition("=")
        if key == name and sep:
            return value.strip('"')
    raise AssertionError(f"{path.relative_to(ROOT)} has no ARG {name}=<default>")


OXIGRAPH_VERSION = build_arg_default("OXIGRAPH_VERSION", OXIGRAPH_DOCKERFILE)


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


# --- compose: the services and their commands ----------------------------------------

#: the services that run provml (the image built from the Dockerfile) …
PROVML_SERVICES = sorted(n for n, s in SERVICES.items() if s.get("image") == PROVML_IMAGE)
#: … and the Oxigraph server, the shared store
OXIGRAPH_SERVICES = sorted(
    n for n, s in SERVICES.items() if isinstance(s.get("build"), dict)
    and PurePosixPath(s["build"].get("context", "")) == PurePosixPath(OXIGRAPH_CONTEXT)
)  # fmt: skip


#: … and Redis, the broker (profile `broker`)
REDIS_SERVICES = sorted(n for n, s in SERVICES.items() if s.get("image") == REDIS_IMAGE)


def profiles(name: str) -> set[str]:
    return set(SERVICES[name].get("profiles") or [])


def replicas(name: str) -> int:
    service = SERVICES[name]
    return int((service.get("deploy") or {}).get("replicas", service.get("scale", 1)))


def remote_store(params: dict[str, Any]) -> str | None:
    """The store URL when it names a SPARQL server (not an embedded store)."""
    url = params["store_url"]
    return url if url and urlsplit(url).scheme.endswith(("+http", "+https")) else None


def embedded_store(params: dict[str, Any]) -> bool:
    return opens_store(params) and remote_store(params) is None


def redis_command(name: str) -> dict[str, str]:
    """Redis's ``redis-server`` options: {"--appendonly": "yes", …}."""
    cmd = SERVICES[name].get("command")
    assert isinstance(cmd, list), f"{name}: give the command as a list (exec form)"
    assert cmd[0] == "redis-server", f"{name} runs {cmd[0]}, not redis-server"
    options = dict(zip(cmd[1::2], cmd[2::2], strict=True))
    assert all(key.startswith("--") for key in options), cmd
    return options


def oxigraph_command(name: str) -> dict[str, str]:
    """The Oxigraph server's ``serve`` options: {"--location": …, "--bind": …}."""
    cmd = SERVICES[name].get("command")
    assert isinstance(cmd, list), f"{name}: give the command as a list (exec form)"
    assert cmd[0] == "serve", f"{name} runs `oxigraph {cmd[0]}`, not `oxigraph serve`"
    options = dict(zip(cmd[1::2], cmd[2::2], strict=True))
    assert set(options) == {"--location", "--bind"}, cmd
    return options


def test_compose_file_is_a_compose_specification_file() -> None:
    assert "version" not in COMPOSE, "the Compose specification has no top-level version"
    default = {"oxigraph", "manager", "tracker-1", "tracker-2", "query"}
    assert set(SERVICES) == default | {n for names in PROFILES.values() for n in names}
    assert sorted(PROVML_SERVICES + OXIGRAPH_SERVICES + REDIS_SERVICES) == sorted(SERVICES)
    assert OXIGRAPH_SERVICES == ["oxigraph"]
    assert REDIS_SERVICES == ["redis"]


@pytest.mark.parametrize("name", PROVML_SERVICES)
def test_service_is_built_from_the_dockerfile(name: str) -> None:
    service = SERVICES[name]
    assert service.get("build") == ".", name
    assert service.get("image") == PROVML_IMAGE, name


@pytest.mark.parametrize("name", PROVML_SERVICES)
def test_service_command_parses(name: str) -> None:
    params = serve_params(name)
    assert params["host"] == "0.0.0.0", f"{name} must listen on all addresses of its container"
    assert not params["run_demo"], "--demo needs scikit-learn, which the image does not have"
    if params["store_url"] is not None:
        assert remote_store(params), f"{name}: an embedded store is given by --data-dir"


def test_layout() -> None:
    assert components(serve_params("manager")) == {"manager"}
    assert components(serve_params("tracker-1")) == {"tracker"}
    assert components(serve_params("tracker-2")) == {"tracker"}
    assert components(serve_params("query")) == {"query"}
    assert components(serve_params("all-in-one")) == set(provml.server.COMPONENTS)
    assert components(serve_params("broker-manager")) == {"manager"}
    assert components(serve_params("broker-tracker")) == {"tracker"}
    profiled = {name: profile for profile, names in PROFILES.items() for name in names}
    for name in SERVICES:
        if name in profiled:
            assert SERVICES[name].get("profiles") == [profiled[name]], name
        else:
            assert "profiles" not in SERVICES[name], f"{name} runs by default"


def test_dependencies_never_need_a_profile_the_dependent_lacks() -> None:
    """Compose refuses a service that depends on one of a profile it is not in: an
    unprofiled service may depend on unprofiled ones only, a profiled one on its own
    profile's and unprofiled ones."""
    for name, service in SERVICES.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on in the long form, with conditions"
        for target, condition in depends.items():
            assert target in SERVICES, f"{name} depends on {target}, which is not a service"
            assert not profiles(target) - profiles(name), (
                f"{name} depends on {target}, which only runs under a profile"
            )
            assert condition == {"condition": "service_healthy"}, (name, target)
            assert "healthcheck" in SERVICES[target], f"{target} needs a healthcheck"


@pytest.mark.parametrize("name", PROVML_SERVICES)
def test_service_command_assembles(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command runs through `provml serve` up to the server loop: the components go
    together (a tracker alone has its manager URL, …), the store URL opens a store, and
    the routes are where expected."""
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
    # embedded store and the tracker's queue go to tmp_path: of repeated options the
    # last one wins (a SPARQL store is only a URL: nothing connects before a request)
    result = CliRunner().invoke(main.commands["serve"], [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(served) == 1
    app = served[0]
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    params = serve_params(name)
    wanted = components(params)
    assert "/healthz" in rules
    assert ("/sparql" in rules) == ("query" in wanted)
    if "manager" in wanted:
        prefix = "/manager" if "tracker" in wanted else ""
        assert prefix + "/api/v1/batches" in rules
    if "tracker" in wanted:
        assert "/api/v1/batches" in rules
    store = app.extensions.get("provml.store")
    assert (store is not None) == opens_store(params)
    if remote_store(params):
        from manager.store.sparql import SparqlStore

        assert isinstance(store, SparqlStore), name
        assert store.flavour == "oxigraph"


# --- compose: how the services reach each other --------------------------------------


def test_trackers_forward_to_the_manager_service() -> None:
    # a tracker without a manager in its process forwards over HTTP
    trackers = [
        name
        for name in PROVML_SERVICES
        if (components(serve_params(name)) & {"tracker", "manager"}) == {"tracker"}
        and not serve_params(name)["broker"]
    ]
    assert trackers == ["tracker-1", "tracker-2"]
    for name in trackers:
        params = serve_params(name)
        url = urlsplit(params["manager_url"] or "")
        assert url.scheme == "http", f"{name}: --manager-url {params['manager_url']!r}"
        target = url.hostname
        # the service's name: Compose's DNS answers it with every replica's address
        assert target == "manager", f"{name}: --manager-url names {target!r}"
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


def test_managers_and_query_share_the_oxigraph_server() -> None:
    users = [n for n in PROVML_SERVICES if remote_store(serve_params(n))]
    assert sorted(users) == ["broker-manager", "manager", "query"]
    for name in users:
        url = urlsplit(remote_store(serve_params(name)) or "")
        assert url.scheme == "oxigraph+http", name
        assert url.hostname in OXIGRAPH_SERVICES, f"{name}: the store {url.hostname!r}"
        bind = oxigraph_command(url.hostname)["--bind"]
        assert bind.rpartition(":")[2] == str(url.port), f"{url.hostname} binds {bind}"
        assert url.path in ("", "/") and not url.query, name
        depends = SERVICES[name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on in the long form, with conditions"
        assert depends.get(url.hostname) == {"condition": "service_healthy"}
        assert not volume_mounts(name), f"{name} keeps nothing: it needs no volume"


# --- compose: the broker (profile `broker`) ------------------------------------------


def brokered() -> list[str]:
    return [n for n in PROVML_SERVICES if serve_params(n)["broker"]]


def test_broker_services() -> None:
    """Under `broker`: three managers consuming the stream into the manager's store, a
    tracker publishing to it, all on the Redis service, which they wait for."""
    assert brokered() == ["broker-manager", "broker-tracker"]
    assert set(brokered()) < set(PROFILES["broker"])
    for name in brokered():
        params = serve_params(name)
        assert params["broker"] == BROKER_URL, name
        url = urlsplit(params["broker"])
        assert url.hostname in REDIS_SERVICES and not url.password, name
        assert str(url.port) == redis_command(url.hostname).get("--port", "6379"), name
        depends = SERVICES[name].get("depends_on") or {}
        assert depends.get(url.hostname) == {"condition": "service_healthy"}, name
    managers = serve_params("broker-manager")
    assert components(managers) == {"manager"}
    assert replicas("broker-manager") == 3
    assert managers["store_url"] == serve_params("manager")["store_url"]
    tracker = serve_params("broker-tracker")
    assert components(tracker) == {"tracker"}
    assert not tracker["manager_url"], "the broker's tracker publishes, it forwards nothing"
    assert replicas("broker-tracker") == 1
    assert not volume_mounts("broker-tracker"), "it keeps no queue: it needs no volume"
    # the image the provml services run has the redis client (the `broker` extra)
    extras = build_arg_default("EXTRAS", DOCKERFILE).strip("[]").split(",")
    assert "broker" in extras, "build the image with the broker extra"


def test_redis_service() -> None:
    service = SERVICES["redis"]
    assert service["image"] == REDIS_IMAGE, "the official image"
    assert "build" not in service
    options = redis_command("redis")
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "always", "an acknowledged batch must survive a crash"
    assert "--bind" not in options and "--protected-mode" not in options
    assert service["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert replicas("redis") == 1
    assert service.get("restart") == "unless-stopped"


def test_replicas() -> None:
    """Trackers and managers are replicated; whatever owns files on a volume is not."""
    assert replicas("manager") >= 2, "run the stateless managers as replicas"
    trackers = [n for n in PROVML_SERVICES if components(serve_params(n)) == {"tracker"}]
    assert len(trackers) >= 2
    for name in SERVICES:
        if volume_mounts(name):
            assert replicas(name) == 1, f"{name} owns a volume: its replicas would share it"


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


def state_dir(name: str) -> str | None:
    """The directory a service keeps files in: the embedded store, the tracker's queue,
    the Oxigraph server's database; None for a service that keeps nothing."""
    if name in OXIGRAPH_SERVICES:
        return oxigraph_command(name)["--location"]
    if name in REDIS_SERVICES:  # the append-only file
        return redis_command(name)["--dir"]
    params = serve_params(name)
    # a tracker's queue (a tracker publishing to the broker keeps none)
    if embedded_store(params) or ("tracker" in components(params) and not params["broker"]):
        return str(params["data_dir"])
    return None


def test_one_process_per_volume() -> None:
    """Each store (the embedded ones, the Oxigraph server's) and each tracker's queue is
    on a named volume of its own that no other service mounts: one process opens it."""
    owners: dict[str, list[str]] = defaultdict(list)
    for name in SERVICES:
        directory = state_dir(name)
        if directory is None:
            continue
        assert PurePosixPath(directory).is_absolute(), f"{name}: {directory!r} is relative"
        holding = [src for src, target in volume_mounts(name) if is_under(directory, target)]
        assert len(holding) == 1, f"{name}: {directory} must be on one volume"
        assert holding[0] in (COMPOSE.get("volumes") or {}), f"{name}: {holding[0]} is not named"
        owners[holding[0]].append(name)
        assert replicas(name) == 1, f"{name} must not be scaled"
        if name in PROVML_SERVICES and embedded_store(serve_params(name)):
            assert "manager" in components(serve_params(name)), f"{name}: a store nobody writes"
    for volume, names in owners.items():
        assert len(names) == 1, f"volume {volume} is used by {names}"
        mounted_by = {n for n in SERVICES for src, _ in volume_mounts(n) if src == volume}
        assert mounted_by == set(names), f"volume {volume} is mounted by {sorted(mounted_by)}"
    declared = set(COMPOSE.get("volumes") or {})
    assert declared == set(owners), "each named volume holds one store or one queue"


def test_oxigraph_service() -> None:
    service = SERVICES["oxigraph"]
    assert service["image"] == f"provml-oxigraph:{OXIGRAPH_VERSION}"
    assert service["build"]["args"] == {"OXIGRAPH_VERSION": OXIGRAPH_VERSION}
    options = oxigraph_command("oxigraph")
    host, _, port = options["--bind"].rpartition(":")
    assert host == "0.0.0.0", "Oxigraph must listen on all addresses of its container"
    assert "ports" not in service, "the Oxigraph server takes writes from anyone: keep it inside"
    assert service.get("init") is True, "PID 1 would ignore SIGTERM"
    test = service["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    assert f"127.0.0.1:{port}/query?" in " ".join(test)


@pytest.mark.integration
def test_oxigraph_healthcheck_passes_against_a_real_server(tmp_path: Path) -> None:
    """The health check's command, pointed at a real Oxigraph server, succeeds."""
    from tests.sparql_servers import start_oxigraph

    server = start_oxigraph(tmp_path)
    try:
        port = oxigraph_command("oxigraph")["--bind"].rpartition(":")[2]
        argv = SERVICES["oxigraph"]["healthcheck"]["test"][1:]
        argv = [a.replace(f"127.0.0.1:{port}", urlsplit(server.url).netloc) for a in argv]
        assert argv[0] == "python"
        subprocess.run([sys.executable, *argv[1:]], check=True, timeout=30)
    finally:
        server.stop()


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
    if name in PROVML_SERVICES:
        port = serve_params(name)["port"]
    elif name in REDIS_SERVICES:
        port = int(redis_command(name).get("--port", "6379"))
    else:
        port = None  # oxigraph: nothing published (test_oxigraph_service)
    for host_ip, published, target in published_ports(name):
        assert host_ip == LOOPBACK, f"{name}: port {target} is published on {host_ip or 'all'}"
        assert published, f"{name}: give the host port of {target} (not a random one)"
        assert target == port, f"{name} listens on {port}, not {target}"
        assert replicas(name) == 1, f"{name}: replicas cannot share host port {published}"


def test_host_ports() -> None:
    hosts = {name: [p for _, p, _ in published_ports(name)] for name in SERVICES}
    assert hosts == {
        "tracker-1": ["5000"],
        "query": ["5001"],
        "all-in-one": ["5002"],
        "tracker-2": ["5003"],
        "broker-tracker": ["5004"],
        "redis": ["6379"],  # capture_lib mode="broker" on the host
        "manager": [],  # reached by the trackers only, on the Compose network
        "broker-manager": [],
        "oxigraph": [],
    }
    assert "query" in components(serve_params("query")), "the SPARQL endpoint is on query"
    every = [p for ports in hosts.values() for p in ports]
    assert len(every) == len(set(every)), f"two services publish the same host port: {hosts}"


@pytest.mark.parametrize("name", PROVML_SERVICES)
def test_healthcheck_asks_healthz(name: str) -> None:
    check = SERVICES[name]["healthcheck"]
    test = check["test"]
    assert isinstance(test, list), test
    assert test[0] == "CMD"
    assert test[1] == "python", "the slim image has no curl"
    port = serve_params(name)["port"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(test)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_stop_grace_period_covers_the_drain(name: str) -> None:
    """`docker compose stop` waits long enough for a tracker to deliver its queue and for
    writes in flight to finish before it kills."""
    grace = SERVICES[name].get("stop_grace_period")
    assert isinstance(grace, str) and grace.endswith("s"), f"{name}: stop_grace_period"
    assert int(grace[:-1]) > config.DRAIN_TIMEOUT.get()


# --- compose: what Compose itself makes of the file ---------------------------------


def compose_tool() -> list[str]:
    """`docker-compose` (Debian's package: parses and checks without a Docker engine) or
    the `docker compose` plugin. Missing: a failure under CI, which installs it, else a skip.
    """
    found = shutil.which("docker-compose")
    if found:
        return [found]
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    message = "docker-compose is not installed (make test installs Debian's docker-compose)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("profile", [None, *sorted(PROFILES)])
def test_compose_validates_the_file(profile: str | None) -> None:
    """`docker-compose config` checks the file against the Compose specification's
    schema (unknown keys, types, depends_on targets and conditions, build contexts …)
    and prints it resolved; what it resolved is what these tests read. Under each
    profile: the default services and that profile's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    option = ["--profile", profile] if profile else []
    result = subprocess.run(
        [*compose_tool(), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE),
         *option, "config"],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    default = {n for n in SERVICES if not profiles(n)}
    # the `docker compose` plugin prints the services a profile enables; Debian's
    # docker-compose 1.29 prints every service whatever the profile
    assert default | set(PROFILES.get(profile or "", [])) <= set(services) <= set(SERVICES)
    assert set(resolved.get("volumes") or {}) <= set(COMPOSE.get("volumes") or {})
    for name, service in services.items():
        # YAML anchors and merge keys came out as the tests read them
        assert [str(a) for a in service["command"]] == SERVICES[name]["command"], name
        assert (service.get("deploy") or {}).get("replicas", 1) == replicas(name), name
        assert service.get("profiles") == SERVICES[name].get("profiles"), name
        assert set(service.get("depends_on") or {}) == set(SERVICES[name].get("depends_on") or {})


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


def test_oxigraph_dockerfile() -> None:
    """The Oxigraph image: the PyPI server at the pinned version, unprivileged, and by
    default what the Compose service runs."""
    path = OXIGRAPH_DOCKERFILE
    assert instructions("FROM", path) == ["python:3.11-slim"]
    assert any(
        'pip install --no-cache-dir "oxigraph==${OXIGRAPH_VERSION}"' in args
        for args in instructions("RUN", path)
    )
    assert last("USER", path).split(":")[0] not in {"root", "0"}, "run as an unprivileged user"
    assert exec_form(last("ENTRYPOINT", path)) == ["oxigraph"]
    assert exec_form(last("CMD", path)) == SERVICES["oxigraph"]["command"]
    assert [v for args in instructions("VOLUME", path) for v in exec_form(args)] == ["/data"]
    port = oxigraph_command("oxigraph")["--bind"].rpartition(":")[2]
    assert instructions("EXPOSE", path) == [port]
    _, sep, cmd = last("HEALTHCHECK", path).partition("CMD ")
    assert sep and exec_form(cmd.strip()) == SERVICES["oxigraph"]["healthcheck"]["test"][1:]


def test_oxigraph_version_is_the_one_tested() -> None:
    """The image's Oxigraph is in the range the dev extra installs for the tests."""
    from packaging.requirements import Requirement

    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.findall(r'"(oxigraph[<>=!~ ,.\d]*)"', pyproject)
    assert len(found) == 1, found
    assert OXIGRAPH_VERSION in Requirement(found[0]).specifier, (OXIGRAPH_VERSION, found)


def test_image_environment_names_real_settings() -> None:
    names = {s.name for s in config.ALL}
    for key in image_env():
        if key.startswith("PROVML_"):
            assert key in names, f"the Dockerfile sets {key}, which provml does not read"
    for name in PROVML_SERVICES:
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
    assert mentioned <= names, f"not in provml.core.config.ALL: {sorted(mentioned - names)}"


def test_deploy_doc_tables_every_variable() -> None:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(PROVML_[A-Z0-9_]+)` \|", text, flags=re.MULTILINE))
    assert rows == {s.name for s in config.ALL}


def test_deploy_doc_defaults_are_the_real_ones() -> None:
    """A default written as a literal in the table is the setting's default (settings
    without one describe what happens instead, e.g. `<data-dir>/audit.log`)."""
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(PROVML_[A-Z0-9_]+)` \| `([^`]*)` \|", text, flags=re.MULTILINE))
    assert len(rows) >= 15
    for setting in config.ALL:
        if setting.name in rows and setting.default is not None:
            written = rows[setting.name]
            assert setting.parse(written) == setting.default, (setting.name, written)


def doc_commands(program: str, subcommand: str = "serve") -> list[list[str]]:
    """Every `PROGRAM SUBCOMMAND …` line of the shell blocks of docs/deploy.md, as argv
    (without the program)."""
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"^ *```sh\n(.*?)^ *```", text, flags=re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == [program, subcommand]:
                commands.append(words[1:])
    return commands


def doc_serve_commands() -> list[list[str]]:
    """Every `provml serve …` line of the shell blocks of docs/deploy.md, as argv."""
    return doc_commands("provml")


def test_deploy_doc_serve_commands_parse() -> None:
    commands = doc_serve_commands()
    assert len(commands) >= 8
    for argv in commands:
        cmd, _ = parse(argv)
        assert cmd == "serve"


def test_deploy_doc_split_commands_agree() -> None:
    """The split layout around an embedded store: one store process, one tracker."""
    parsed = [parse(argv)[1] for argv in doc_serve_commands()]
    stores = [p for p in parsed if components(p) == {"manager", "query"}]
    assert len(stores) == 1
    store = stores[0]
    assert store["store_url"] is None
    assert os.path.normpath(store["data_dir"]) == "provml-data"
    assert store["port"] == 5001
    to_store = [
        p
        for p in parsed
        if components(p) == {"tracker"} and urlsplit(p["manager_url"]).port == store["port"]
    ]
    assert len(to_store) == 1
    url = urlsplit(to_store[0]["manager_url"])
    assert url.hostname == "127.0.0.1" and url.path in ("", "/")
    assert to_store[0]["port"] == 5000


def test_deploy_doc_oxigraph_commands_agree() -> None:
    """Around an Oxigraph server: two managers and one query service on its URL, two
    trackers each on a manager of their own and a data directory of their own."""
    servers = doc_commands("oxigraph")
    assert len(servers) == 1
    options = dict(zip(servers[0][1::2], servers[0][2::2], strict=True))
    assert set(options) == {"--location", "--bind"}
    host, _, port = options["--bind"].rpartition(":")
    assert host == LOOPBACK
    store_url = f"oxigraph+http://{host}:{port}"
    parsed = [parse(argv)[1] for argv in doc_serve_commands()]
    # (the broker's managers, "Many machines": tests/broker/test_broker_docs.py)
    remote = [p for p in parsed if p["store_url"] is not None and not p.get("broker")]
    assert all(p["store_url"] == store_url for p in remote), [p["store_url"] for p in remote]
    managers = [p for p in remote if components(p) == {"manager"}]
    queries = [p for p in remote if components(p) == {"query"}]
    assert len(managers) == 2 and len(queries) == 1 and len(remote) == 3
    manager_ports = [p["port"] for p in managers]
    trackers = [
        p
        for p in parsed
        if components(p) == {"tracker"} and urlsplit(p["manager_url"]).port in manager_ports
    ]
    assert sorted(urlsplit(t["manager_url"]).port for t in trackers) == sorted(manager_ports)
    assert all(urlsplit(t["manager_url"]).hostname == LOOPBACK for t in trackers)
    assert len({os.path.normpath(t["data_dir"]) for t in trackers}) == len(trackers)
    ports = [p["port"] for p in [*managers, *queries, *trackers]] + [int(port)]
    assert len(ports) == len(set(ports)), ports
    # the same host ports as the Compose file
    assert sorted(t["port"] for t in trackers) == [5000, 5003]
    assert queries[0]["port"] == 5001


def test_deploy_doc_tables_every_compose_service() -> None:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    section = text[text.index("## Docker Compose\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| (`[^|]*)\|", section, flags=re.MULTILINE)
    # the names in the first cell, not what parentheses say of them ("(profile `single`)")
    named = {n for row in rows for n in re.findall(r"`([a-z0-9-]+)`", re.sub(r"\(.*?\)", "", row))}
    assert named == set(SERVICES)
    for name in SERVICES:
        for _, published, _ in published_ports(name):
            assert f"127.0.0.1:{published}" in section, f"{name}: {published} not documented"
