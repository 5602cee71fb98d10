"""What the commands share: the --url, --token and --data-dir options, option defaults
read from the environment, and errors said as CLI messages."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from provml.core import config

if TYPE_CHECKING:
    from manager.store.oxigraph import OxigraphStore
    from provml.client import ClientError, ProvmlClient

DEFAULT_URL = "http://127.0.0.1:5000"
URL_HELP = "URL of the provml service (tracker and query)."
DATA_DIR_HELP = (
    "Read the embedded store in this data directory instead of asking a server (no server "
    "may be using it)."
)


def env(setting: config.Setting, fallback: Any = None) -> Any:
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


def http_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
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


def url_option(help: str = URL_HELP) -> Any:
    """``--url``: the service to talk to, from PROVML_URL by default, checked as an
    http(s) URL."""
    return click.option(
        "--url",
        default=env(config.URL, DEFAULT_URL),
        callback=http_url,
        show_default=DEFAULT_URL,
        help=help,
    )


def token_option(command: Any) -> Any:
    """``--token``, default PROVML_TOKEN (never shown in --help)."""
    return click.option(
        "--token",
        default=env(config.TOKEN),
        help="Access token to send (default: PROVML_TOKEN, which is better: a flag is "
        "visible to other users in the process list).",
    )(command)


def failed(exc: Any) -> click.ClickException:
    """A ProvmlError as the CLI says it: its message and its details."""
    from provml.client import with_details

    return click.ClickException(with_details(exc.message, exc.details))


def http_client(url: str, token: str | None) -> ProvmlClient:
    """The service at ``url`` (imported when used: ``provml --help`` needs no HTTP)."""
    from provml.client import ProvmlClient

    return ProvmlClient(url, token)


@contextlib.contextmanager
def client_errors() -> Iterator[None]:
    """A :class:`~provml.client.ClientError` as a CLI error with the client's message."""
    from provml.client import ClientError

    try:
        yield
    except ClientError as exc:
        raise click.ClickException(exc.message) from None


def refusal_text(exc: ClientError) -> str:
    """What the service said when it refused a request: its message and details, or the
    status and the start of the body if it said no JSON."""
    from provml.client import with_details

    body = exc.body
    if isinstance(body, dict):
        return with_details(str(body.get("message", exc.text[:300])), body.get("details"))
    return f"{exc.status_code} {exc.text[:300]}"


def post_batch(service: ProvmlClient, body: bytes, url: str) -> tuple[dict[str, Any], str]:
    """POST a wire batch to the tracker at ``url``: ``(its answer, "")``, or ``({}, why it
    was refused)``. A tracker that cannot be reached, or an answer that is no JSON, ends
    the command (nothing more could be sent)."""
    from provml.client import ClientError

    try:
        return service.post_batch(body), ""
    except ClientError as exc:
        if exc.unreachable:
            raise click.ClickException(f"cannot reach the tracker at {url}: {exc.reason}") from None
        if not exc.refused:
            raise click.ClickException(exc.message) from None
        return {}, refusal_text(exc)


def data_ref(value: str) -> str:
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


@contextlib.contextmanager
def local_store(data_dir: str, create: bool = False) -> Iterator[OxigraphStore]:
    """The embedded store of ``data_dir`` (made if ``create``), closed after use; its
    errors (none there, another process using it, a failed read or write) as CLI
    messages."""
    from manager.store import open_store
    from manager.store.oxigraph import OxigraphStore
    from provml.core.errors import ProvmlError
    from provml.server import store_url

    if not create and not os.path.isdir(os.path.join(data_dir, "store")):
        raise click.ClickException(f"no embedded store in {data_dir} (expected {data_dir}/store)")
    try:
        store = open_store(store_url(data_dir))
    except ProvmlError as exc:
        raise failed(exc) from None
    assert isinstance(store, OxigraphStore)  # an oxigraph: URL opens the embedded store
    try:
        yield store
    except ProvmlError as exc:
        raise failed(exc) from None
    finally:
        store.close()
