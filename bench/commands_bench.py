"""Benchmark: what a person waits for at the command line, on the office's scale (issue 20).

    python bench/commands_bench.py [--runs 5] [--flow-runs 3] [--worker-runs 2] [--runner-poll 10]
                                   [--no-server] [--keep]

A 3,000-item registry (SQLite in a temp folder) made the way `followup demo` makes its own: the
demo's facilities, visits, recommendations and replies, imported through the project's import.
Then each command runs as a user runs it, `followup …` in a fresh process in that folder, and
the table shows the median and the fastest wall time of the runs:

* the interpreter alone and `import followup.interfaces.cli`: the floor under every command;
* `stats`, `list`, `show X`, `history X`: read-only (aim: under 1 s);
* `import recommendations` of a one-row file (the row is already there: nothing written);
* `run check-deadlines` with no Prefect server anywhere (a fresh Prefect profile): Prefect
  starts a temporary server for each run;
* the same with `followup serve` up in the folder (its own Prefect server on a free port): the
  command hands the step to it and the serve process runs it (aim: under 2 s plus the step's
  work, which here is deciding 3,000 items: the day's letters went out in an untimed first run);
* the same with settings that differ from serve's (FOLLOWUP_ACTOR): the command runs the step in
  its own process, importing Prefect, and reports to serve's server;
* `run check-deadlines --on-workers`: a flow run of the deployment, run by `followup serve`'s
  runner, which looks for work every `--runner-poll` seconds (Prefect's default: 10).

Figures only: nothing fails on time. The script exits non-zero when a command fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import quiet, run_child  # noqa: E402

AS_OF = "2026-11-23"  # the demo's day (interfaces/demo.py DEMO_AS_OF)
FOLLOWUP = str(Path(sys.executable).with_name("followup"))


def child_build(workdir: str, url: str) -> tuple[int, str]:
    """The demo's registry, without its daily pass: (recommendations, the first one's external id)."""
    os.chdir(workdir)
    os.environ["FOLLOWUP_DATABASE_URL"] = url
    from followup.interfaces.demo import DEMO_YEAR, load_places
    from followup.interfaces.demo_data import generate
    from followup.models.crud import init_db
    from followup.spreadsheets.ingest import import_recommendations, import_responses
    from followup.spreadsheets.tabular import write_table

    init_db()
    frames = generate(year=DEMO_YEAR)
    recommendations, responses = Path(workdir) / "recommendations.csv", Path(workdir) / "responses.csv"
    write_table(frames.recommendations, recommendations)
    write_table(frames.responses, responses)
    load_places(frames)
    imported = import_recommendations(recommendations, actor="bench")
    import_responses(responses, actor="bench")
    return imported.created, str(frames.recommendations["external_id"].iloc[0])


def one_row_file(source: Path, target: Path) -> None:
    with source.open(encoding="utf-8-sig", newline="") as f:
        header, first = next(csv.reader(f)), next(csv.reader(f))
    with target.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, first])


class Commands:
    """Runs `followup …` (or python) in the bench's folder and keeps the wall times and failures."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir, self.env = workdir, env
        self.rows: list[tuple[str, list[float], str]] = []
        self.failures: list[str] = []

    def once(self, argv: list[str], env: dict[str, str] | None = None) -> float | None:
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=self.workdir, env=env or self.env, capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            self.failures.append(f"{' '.join(argv[1:])}: exit {done.returncode}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
            return None
        return seconds

    def time(self, label: str, argv: list[str], runs: int, aim: str = "", env: dict[str, str] | None = None) -> None:
        print(f"[commands] {label} x{runs} ...", flush=True)
        times = [t for t in (self.once(argv, env) for _ in range(runs)) if t is not None]
        self.rows.append((label, times, aim))

    def table(self) -> None:
        header = f"{'command':<58} {'runs':>4} {'median s':>9} {'fastest s':>10}  aim"
        print(header)
        print("-" * len(header))
        for label, times, aim in self.rows:
            median = f"{statistics.median(times):.2f}" if times else "failed"
            fastest = f"{min(times):.2f}" if times else "-"
            print(f"{label:<58} {len(times):>4} {median:>9} {fastest:>10}  {aim}")


def start_serve(workdir: Path, env: dict[str, str], poll: int) -> tuple[subprocess.Popen[bytes], str]:
    """`followup serve` on a free port, as a user starts it; returns it and its API URL once it has noted it."""
    from followup.operations.deployments import SERVE_RECORD, free_port

    log = open(workdir / "serve.log", "wb")  # noqa: SIM115 - the child writes to it until it stops
    serve = subprocess.Popen([FOLLOWUP, "serve", "--port", str(free_port())], cwd=workdir,
                             env=dict(env, PREFECT_RUNNER_POLL_FREQUENCY=str(poll)), stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    record = workdir / "var" / "prefect" / SERVE_RECORD
    deadline = time.monotonic() + 240
    while not record.exists():
        if serve.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"followup serve did not start; see {workdir / 'serve.log'}")
        time.sleep(1)
    return serve, json.loads(record.read_text(encoding="utf-8"))["api_url"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each read-only command")
    parser.add_argument("--flow-runs", type=int, default=3, help="runs of `run check-deadlines`, with and without a server")
    parser.add_argument("--worker-runs", type=int, default=2, help="runs of `run check-deadlines --on-workers` (0: none)")
    parser.add_argument("--runner-poll", type=int, default=10, help="PREFECT_RUNNER_POLL_FREQUENCY of `followup serve`")
    parser.add_argument("--no-server", action="store_true", help="skip the runs that need `followup serve`")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args(argv)
    quiet()

    workdir = Path(tempfile.mkdtemp(prefix="followup-commands-"))
    url = f"sqlite:///{workdir / 'registry.db'}"
    # a shell with no Prefect server configured: a fresh profile, no PREFECT_API_URL
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(FOLLOWUP_DATABASE_URL=url, PREFECT_HOME=str(workdir / "prefect-profile"), COLUMNS="160")
    env.setdefault("FOLLOWUP_SECRET_KEY", "bench-secret-key-not-for-production")  # the letters carry signed links
    serve = None
    try:
        print(f"[build] the demo's registry in {workdir} ...", flush=True)
        started = time.perf_counter()
        items, first = run_child(child_build, str(workdir), url)
        print(f"[build]   {items} recommendations in {time.perf_counter() - started:.1f} s", flush=True)
        one_row_file(workdir / "recommendations.csv", workdir / "one.csv")

        c = Commands(workdir, env)
        python = sys.executable
        c.time("python -c pass (the interpreter)", [python, "-c", "pass"], args.runs)
        c.time("python -c 'import followup.interfaces.cli'", [python, "-c", "import followup.interfaces.cli"], args.runs)
        c.time("followup stats", [FOLLOWUP, "stats", "--as-of", AS_OF], args.runs, "< 1 s")
        c.time("followup list", [FOLLOWUP, "list"], args.runs, "< 1 s")
        c.time(f"followup show {first}", [FOLLOWUP, "show", first], args.runs, "< 1 s")
        c.time(f"followup history {first}", [FOLLOWUP, "history", first], args.runs, "< 1 s")
        c.time("followup import recommendations one.csv (1 row)", [FOLLOWUP, "import", "recommendations", "one.csv"], args.runs)

        check = [FOLLOWUP, "run", "check-deadlines", "--as-of", AS_OF]
        print("[commands] followup run check-deadlines, the day's work and a first temporary server (untimed) ...", flush=True)
        c.once(check)
        c.time("followup run check-deadlines, no server (temporary one)", check, args.flow_runs)
        if not args.no_server:
            print("[serve] followup serve ...", flush=True)
            serve, api = start_serve(workdir, env, args.runner_poll)
            print(f"[serve]   up, API {api}", flush=True)
            c.time("followup run check-deadlines, handed to `followup serve`", check, args.flow_runs, "< 2 s + the step's work")
            # other settings than serve's: the command runs the step itself, reporting to serve's server
            elsewhere = dict(env, FOLLOWUP_ACTOR="bench-elsewhere")
            c.time("followup run check-deadlines, own process, serve's server", check, args.flow_runs, env=elsewhere)
            if args.worker_runs:
                c.time(f"followup run check-deadlines --on-workers (poll {args.runner_poll} s)", [*check, "--on-workers"],
                       args.worker_runs)
    finally:
        if serve is not None:
            os.killpg(serve.pid, signal.SIGTERM)
            serve.wait(timeout=60)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")

    print()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {items} recommendations on SQLite; "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print()
    c.table()
    print()
    print("notes:")
    print("  every figure is a fresh `followup` process, start to exit; the `run` lines without --on-workers include the")
    print("  step itself (deciding 3,000 items; nothing is due any more after the untimed first run).")
    if c.failures:
        print()
        print("FAILED COMMANDS:")
        for failure in c.failures:
            print(f"  {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
