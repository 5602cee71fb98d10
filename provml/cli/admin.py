"""Administration: the settings (``provml config``) and access tokens (``provml token``)."""

from __future__ import annotations

import os
import re

import click

from provml.core import config
from provml.core.broker import masked


@click.command(name="config")
def show_config() -> None:
    """List the PROVML_* environment variables, their values and defaults."""
    for s in config.ALL:
        current = os.environ.get(s.name)
        # (a broker URL may hold a password: never shown)
        shown = "(unset)" if current is None else "(set)" if s.secret else repr(masked(current))
        click.echo(f"{s.name:24} {shown:12} default {s.default!r}\n    {s.help}")


@click.command()
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
