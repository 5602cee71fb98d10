"""The ``provml`` command. ``provml --help`` lists the subcommands.

The commands live by job: :mod:`~provml.cli.serving` (serve, demo),
:mod:`~provml.cli.records` (query, ask, model, dataset), :mod:`~provml.cli.loading`
(ingest, compact, import), :mod:`~provml.cli.exporting` (export, report),
:mod:`~provml.cli.admin` (config, token) and :mod:`~provml.cli.running` (run);
:mod:`~provml.cli.common` holds their shared options. They talk to a server through
:mod:`provml.client`.
"""

from __future__ import annotations

import logging

import click

from provml import __version__
from provml.cli import admin, exporting, loading, records, running, serving


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="provml")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """provml: provenance of ML and HPC workflows as a W3C PROV graph.

    \b
    Start the services:          provml serve
    Run the demo against them:   provml demo
    Load disk-only capture logs: provml ingest prov-logs/
    Capture a non-Python step:   provml run --in a --out b -- ./step
    Ask a lineage question:      provml ask training-data model=<sha256>
    Run any SPARQL query:        provml query 'SELECT * WHERE { ?s ?p ?o } LIMIT 10'
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for _command in (
    serving.serve,
    serving.demo,
    records.query,
    records.ask,
    records.model,
    records.dataset,
    loading.ingest,
    loading.compact,
    loading.reindex,
    loading.import_,
    exporting.export,
    exporting.report,
    admin.show_config,
    admin.token,
    running.run,
):
    main.add_command(_command)

__all__ = ["main"]
