"""The installed Python distributions, ``name==version`` per line, and their digest."""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from importlib import metadata

from capture_lib.environment.core import Scalar, cached

log = logging.getLogger(__name__)


def packages() -> dict[str, Scalar]:
    text = cached("packages", tuple(sys.path), _packages_uncached)
    if not text:
        return {}
    return {"packages": text, "packages_sha256": hashlib.sha256(text.encode()).hexdigest()}


def _packages_uncached() -> str:
    """``name==version`` per line, sorted case-insensitively.

    When one name is installed more than once on ``sys.path``, the first one (the one
    ``import`` and ``importlib.metadata.version`` use) is kept.
    """
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        try:
            name = dist.metadata["Name"]
            version = dist.version
        except Exception:
            log.debug("provml: unreadable distribution metadata", exc_info=True)
            continue
        if not name or not version:
            continue
        key = re.sub(r"[-_.]+", "-", str(name)).lower()
        seen.setdefault(key, f"{str(name).strip()}=={str(version).strip()}")
    return "\n".join(sorted(seen.values(), key=lambda line: (line.casefold(), line)))
