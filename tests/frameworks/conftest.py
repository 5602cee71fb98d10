"""The integrations' tests with the real frameworks (`make test-frameworks`).

These frameworks are a separate install (the ``frameworks`` extra). A test module that
needs one asks for it with :func:`framework`: under ``make test-frameworks``
(``PROVML_REQUIRE_FRAMEWORKS=1``) a missing framework is an error, elsewhere a skip.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import capture_lib as cl
from tests.capture_lib.integrations.conftest import Captured, ask

__all__ = ["Captured", "ask", "framework"]


def framework(name: str) -> ModuleType:
    """Import ``name`` for a test module: required under make test-frameworks."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("PROVML_REQUIRE_FRAMEWORKS") == "1":
            raise
        pytest.skip(
            f"{name} is not installed (make test-frameworks installs it)", allow_module_level=True
        )
        raise  # unreachable


@pytest.fixture
def captured(tmp_path: Path) -> Iterator[Captured]:
    """Disk capture (autolog off); ``.records()`` reads the logs back, ``.store()`` loads
    them through the manager into an in-memory store for :func:`ask`."""
    logs = tmp_path / "logs"
    cl.init(mode="disk", path=str(logs), flush_interval=0.05)
    try:
        yield Captured(logs)
    finally:
        cl.autolog(disable=True)
        cl.shutdown(timeout=5)
