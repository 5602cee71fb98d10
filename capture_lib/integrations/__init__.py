"""Integrations: what a framework does, captured without capture code.

>>> import capture_lib as cl
>>> _ = cl.init(mode="off")
>>> status = cl.autolog()          # every integration whose framework is installed
>>> status = cl.autolog(exclude=["sklearn"])   # all but scikit-learn
>>> status = cl.autolog(disable=True)          # every patch undone

One module per framework, named in :data:`INTEGRATIONS`; it imports its framework only
when enabled, and offers ``FRAMEWORK`` (the package to look for), ``enable()``,
``disable()`` and ``enabled()``. A later integration plugs in by adding its line.
Nothing here raises into the workflow: an integration that fails to enable is logged,
counted in ``cl.stats()["lost"]["integration_error"]`` and reported as ``"failed"``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from collections.abc import Iterable

from capture_lib import runtime
from capture_lib.integrations import digest

log = logging.getLogger(__name__)

#: integration name → its module (importing it imports nothing of its framework)
INTEGRATIONS: dict[str, str] = {
    "sklearn": "capture_lib.integrations.sklearn",
    "dask": "capture_lib.integrations.dask",
    "xgboost": "capture_lib.integrations.xgboost",
    "lightgbm": "capture_lib.integrations.lightgbm",
    "transformers": "capture_lib.integrations.transformers",
    "lightning": "capture_lib.integrations.lightning",
    "keras": "capture_lib.integrations.keras",
}
# Snakemake has an integration that autolog does not enable: ``snakemake --logger provml``
# (capture_lib.integrations.snakemake, docs/integrations.md).

ENABLED, DISABLED, EXCLUDED, ABSENT, FAILED = (
    "enabled", "disabled", "excluded", "not installed", "failed",
)  # fmt: skip


def autolog(disable: bool = False, exclude: Iterable[str] | str = ()) -> dict[str, str]:
    """Enable every integration whose framework is installed, but those in ``exclude``
    (which are disabled if they were on); ``disable=True`` disables them all.

    Returns each integration's state: ``"enabled"``, ``"disabled"``, ``"excluded"``,
    ``"not installed"`` or ``"failed"``. Calling it again is harmless: nothing is
    patched twice.
    """
    excluded = {exclude} if isinstance(exclude, str) else set(exclude or ())
    for name in sorted(excluded - INTEGRATIONS.keys()):
        log.warning(
            "provml autolog: no integration named %r (known: %s)", name, ", ".join(INTEGRATIONS)
        )
    status = {}
    for name, module_name in INTEGRATIONS.items():
        try:
            status[name] = _apply(name, module_name, disable, name in excluded)
        except Exception:
            log.exception("provml autolog: the %s integration failed (ignored)", name)
            runtime.count_lost("integration_error")
            status[name] = FAILED
    if disable:  # the copies integrations keep (digest.py), let go and no longer kept
        digest.forget_copies()
    else:
        digest.keep_copies()
    return status


def _apply(name: str, module_name: str, disable: bool, excluded: bool) -> str:
    if disable or excluded:
        module = sys.modules.get(module_name)  # never loaded: nothing to undo
        if module is not None and module.enabled():
            module.disable()
        return EXCLUDED if excluded and not disable else DISABLED
    module = importlib.import_module(module_name)
    if importlib.util.find_spec(module.FRAMEWORK) is None:
        return ABSENT
    module.enable()
    return ENABLED


def enabled() -> list[str]:
    """The integrations enabled now."""
    return [
        name
        for name, module_name in INTEGRATIONS.items()
        if (m := sys.modules.get(module_name)) is not None and m.enabled()
    ]


__all__ = ["INTEGRATIONS", "autolog", "enabled"]
