"""What the Snakemake logger plugin costs: a workflow of N trivial jobs, with and without
``--logger provml``.

The Snakefile has N jobs of one rule (``echo {wildcards.i} > {output}``, one small output
each) and a rule gathering them; each run starts from an empty directory and is timed
as a whole (``python -m snakemake --cores 1``, a process of its own), ``--repeats``
times with the plugin and without, interleaved (on, off, on, off …) so that the
machine's drift touches both alike; the figures are medians. With the plugin, capture
goes to disk (``--logger-provml-mode disk``), as on a compute node. Reported: the whole
run's wall time, Snakemake's own ``Elapsed time`` (from the DAG's start to its end,
without the interpreter's start-up), and their difference per job. Both differences
include the plugin's one-off costs (capture_lib's import, and the environment captured
when the run starts), spread over the N jobs.

Then the plugin's own work per job, in this process: ``--handled`` jobs' records (a
start with one input file and the Snakefile, an end with one output file) handed to
:class:`~capture_lib.integrations.snakemake.Capture` as Snakemake's plugin thread
would, timed (wall and CPU of the process, the capture worker's included).

    python bench/integrations_snakemake.py [--jobs N] [--repeats R] [--handled M]
                                           [--skip-cli] [--json PATH]

Run it alone on the machine (``flock /tmp/provml-cpu.lock python
bench/integrations_snakemake.py`` on a shared one).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SNAKEFILE = """
N = {jobs}

rule all:
    input: expand("out/{{i}}.txt", i=range(N))
    shell: "cat {{input}} > all.txt"

rule one:
    output: "out/{{i}}.txt"
    params: step="{{i}}"
    shell: "echo {{wildcards.i}} > {{output}}"
"""

_ELAPSED = re.compile(r"Elapsed time: (\d+):(\d+):([\d.]+)")


def run_once(directory: Path, plugin: bool, logs: Path) -> tuple[float, float]:
    """(wall seconds, Snakemake's elapsed seconds) of one run from a clean directory."""
    for path in (directory / "out").glob("*"):
        path.unlink()
    for name in ("all.txt",):
        (directory / name).unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVML_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    args = [sys.executable, "-m", "snakemake", "--cores", "1", "--nocolor", "--forceall"]
    if plugin:
        args += ["--logger", "provml", "--logger-provml-mode", "disk",
                 "--logger-provml-path", str(logs)]  # fmt: skip
    t = time.perf_counter()
    done = subprocess.run(args, cwd=directory, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    m = _ELAPSED.search(done.stderr)
    elapsed = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else float("nan")
    return wall, elapsed


def measure(jobs: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "wf"
        (directory / "out").mkdir(parents=True)
        (directory / "Snakefile").write_text(SNAKEFILE.format(jobs=jobs))
        times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for i in range(repeats * 2 + 2):
            on = i % 2 == 0
            result = run_once(directory, on, Path(tmp) / "logs")
            if i >= 2:  # the first pair warms the file-system and bytecode caches
                times[on].append(result)
    out: dict[str, Any] = {"jobs": jobs, "repeats": repeats}
    for key, index in (("wall", 0), ("elapsed", 1)):
        with_ = statistics.median(t[index] for t in times[True])
        without = statistics.median(t[index] for t in times[False])
        out[key] = {
            "without_s": round(without, 3),
            "with_s": round(with_, 3),
            "overhead_per_job_ms": round((with_ - without) / jobs * 1000, 2),
            "snakemake_per_job_ms": round(without / jobs * 1000, 1),
            "overhead_pct": round((with_ - without) / without * 100, 1),
        }
    return out


def measure_handled(jobs: int) -> dict[str, Any]:
    """The capture's own cost per job: records handed to Capture in this process."""
    import logging

    import capture_lib as cl
    from capture_lib.integrations.snakemake import FACTS, Capture

    with tempfile.TemporaryDirectory() as tmp:
        snakefile = Path(tmp) / "Snakefile"
        snakefile.write_text(SNAKEFILE.format(jobs=jobs))
        for i in range(jobs):
            (Path(tmp) / f"{i}.txt").write_text(f"{i}\n")
        cl.init(mode="disk", path=str(Path(tmp) / "logs"))
        capture = Capture(None)

        def record(event: str, **fields: Any) -> logging.LogRecord:
            r = logging.LogRecord("snakemake.logging", logging.INFO, "", 0, event, None, None)
            r.__dict__.update(event=event, **fields)
            return r

        capture.filter(record("workflow_started", snakefile_main=str(snakefile)))
        records = []
        for i in range(jobs):
            facts = {"params": [("step", str(i))], "snakefile": str(snakefile), "log": [],
                     "input": [("input", f"{tmp}/{max(i - 1, 0)}.txt")],
                     "output": [("output", f"{tmp}/{i}.txt")]}  # fmt: skip
            records.append(record("job_info", jobid=i, rule_name="one", wildcards={"i": str(i)},
                                  threads=1, resources=None, **{FACTS: facts}))  # fmt: skip
            records.append(record("job_finished", job_id=i))
        wall, cpu = time.perf_counter(), time.process_time()
        for r in records:
            capture.handle(r)
        assert cl.flush(30)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        capture.close()
        cl.shutdown()
    return {"jobs": jobs, "wall_us_per_job": round(wall / jobs * 1e6),
            "cpu_us_per_job": round(cpu / jobs * 1e6)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--handled", type=int, default=5000)
    parser.add_argument("--skip-cli", action="store_true", help="only the in-process part")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result: dict[str, Any] = {}
    if not args.skip_cli:
        result = measure(args.jobs, args.repeats)
        for key in ("wall", "elapsed"):
            r = result[key]
            print(f"{key:8} without {r['without_s']:8.3f} s  with {r['with_s']:8.3f} s  "
                  f"overhead {r['overhead_per_job_ms']:6.2f} ms/job ({r['overhead_pct']:+.1f} "
                  f"%, Snakemake itself {r['snakemake_per_job_ms']} ms/job)")  # fmt: skip
    result["handled"] = handled = measure_handled(args.handled)
    print(
        f"handled  {handled['jobs']} jobs: {handled['wall_us_per_job']} µs wall, "
        f"{handled['cpu_us_per_job']} µs CPU per job"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
