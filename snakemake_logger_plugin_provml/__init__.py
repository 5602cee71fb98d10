"""provml's Snakemake logger plugin: ``snakemake --cores 4 --logger provml``.

Snakemake finds logger plugins as top-level packages named
``snakemake_logger_plugin_<name>``: this one is ``provml``. It is a thin shell: the
logic is :class:`capture_lib.integrations.snakemake.Capture` (docs/integrations.md,
"Snakemake"), imported only when Snakemake instantiates the handler, so that every other
Snakemake command (which imports all installed logger plugins to list them) pays nothing
for capture_lib.

The settings are Snakemake options ``--logger-provml-<name>``; the capture mode, URL and
path default to capture_lib's ``PROVML_MODE``, ``PROVML_URL`` and ``PROVML_PATH``.
"""

# (no `from __future__ import annotations`, and Optional rather than `str | None`:
# Snakemake reads the settings' field types at run time to build its command-line
# options, and understands typing.Optional only)
from dataclasses import dataclass, field
from typing import Any, Optional

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

__all__ = ["LogHandler", "LogHandlerSettings"]


def _option(help: str, **more: Any) -> Any:
    """A setting ``--logger-provml-<name>``, unset by default."""
    return field(default=None, metadata={"help": help, **more})


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    mode: Optional[str] = _option(  # noqa: UP045
        "provml capture mode: http, disk or off (default: PROVML_MODE; http when "
        "PROVML_URL is set, else disk).",
        choices=["http", "disk", "off"],
    )
    url: Optional[str] = _option(  # noqa: UP045
        "URL of the provml tracker, for mode http (default: PROVML_URL)."
    )
    path: Optional[str] = _option(  # noqa: UP045
        "Directory of provml's disk segment files, and of the spool in mode http "
        "(default: PROVML_PATH, else prov-logs)."
    )
    workflow: Optional[str] = _option(  # noqa: UP045
        "Name of the workflow run in provml (default: PROVML_WORKFLOW, else the "
        "Snakefile's name, or its directory's for a file called Snakefile)."
    )
    models: Optional[str] = _option(  # noqa: UP045
        "Comma-separated glob patterns of output files recorded as models "
        "(e.g. '*.pt,models/*.pkl')."
    )
    stages: Optional[str] = _option(  # noqa: UP045
        "Comma-separated RULE=STAGE: the provml stage of a rule's jobs (training, "
        "validation, evaluation or inference), e.g. 'train=training'."
    )


class LogHandler(LogHandlerBase):
    """Hands every record of Snakemake's log to the capture (never raises)."""

    def __post_init__(self) -> None:
        self._capture: Any = None
        try:
            from capture_lib.integrations.snakemake import Capture

            dryrun = bool(getattr(self.common_settings, "dryrun", False))
            self._capture = Capture(self.settings, dryrun=dryrun)
        except Exception:
            _failed("starting")

    def emit(self, record: Any) -> None:
        capture = self._capture
        if capture is not None:
            capture.handle(record)

    def close(self) -> None:
        capture, self._capture = self._capture, None
        try:
            if capture is not None:
                capture.close()
        finally:
            super().close()

    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True  # every record, whatever --quiet says

    @property
    def has_formatter(self) -> bool:
        return True  # formats nothing

    @property
    def needs_rulegraph(self) -> bool:
        return False


def _failed(where: str) -> None:
    import logging

    logging.getLogger(__name__).exception("provml: the Snakemake logger failed %s", where)
    try:
        from capture_lib import runtime

        runtime.count_lost("integration_error")
    except Exception:
        pass
