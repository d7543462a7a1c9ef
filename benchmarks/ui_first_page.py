"""How long the Prefect UI's first page takes with 1,000 recorded task runs, on SQLite (the embedded default) and on
PostgreSQL (the lab's profile, deploy/README.md).

For each database: `talkface ui` on free loopback ports (PostgreSQL: a real server in a temporary directory, as the
tests start it, tests/postgres.py), one flow run of `TASKS` trivial tasks recorded through the API, then headless
Chromium (tests/browser.py) opens the Runs page and the clock stops when the page shows the flow run's name: the first
load in a new browser, then the median of `LOADS` more. Also the time to record the runs (until the server counts
all of them).

    make benchmark-ui        # or: .venv/bin/python benchmarks/ui_first_page.py [--tasks 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser import browser, page_showing  # noqa: E402
from tests.postgres import postgres_server  # noqa: E402
from tests.servers import free_port, start, stop, wait_for  # noqa: E402

LOADS = 3
DATABASES = ("sqlite", "postgresql")
RESULT = "RESULT "


def record_runs(api: str, tasks: int, name: str, timeout: float = 600) -> float:
    """Seconds to run one flow of `tasks` tasks against the server at `api` until the server holds all of their task
    runs (the client sends their states as events, which the server writes after the flow has returned)."""
    from prefect import flow, task
    from prefect.settings import PREFECT_API_URL, temporary_settings

    def recorded() -> int:  # the REST API's POST /task_runs/count
        request = urllib.request.Request(f"{api}/task_runs/count", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(json.load(response))

    @task
    def step(i: int) -> int:
        return i

    @flow(name="ui_benchmark", flow_run_name=name)
    def many() -> None:
        for i in range(tasks):
            step(i)

    with temporary_settings(updates={PREFECT_API_URL: api}):
        started = time.perf_counter()
        many()
        while recorded() < tasks:
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{api}: fewer than {tasks} task runs recorded after {timeout:.0f} s")
            time.sleep(1)
        return time.perf_counter() - started


def time_first_page(url: str, run_name: str) -> tuple[float, float]:
    """(first load in a new browser, median of LOADS more) seconds until the Runs page shows `run_name`."""
    times = []
    with browser(window=(1400, 2000)) as page:
        for _ in range(1 + LOADS):
            page.get("about:blank")
            started = time.perf_counter()
            page_showing(page, f"{url}/runs", [run_name], timeout=300)
            times.append(time.perf_counter() - started)
    return times[0], statistics.median(times[1:])


def measure(database: str, tasks: int, root: Path, env: dict, db_url: str | None) -> dict:
    prefect_port, mlflow_port = free_port(), free_port()
    args = ["ui", "--data-root", root / database, "--prefect-port", prefect_port, "--mlflow-port", mlflow_port]
    ui, lines = start([*args, *(["--database", db_url] if db_url else [])],
                      {**env, "PREFECT_HOME": str(root / f"{database}-prefect-home")})
    try:
        wait_for(lines, "Ctrl-C stops both servers", 300)
        url, run_name = f"http://127.0.0.1:{prefect_port}", f"ui-benchmark-{database}"
        record_s = record_runs(f"{url}/api", tasks, run_name)
        first, warm = time_first_page(url, run_name)
    finally:
        stop(ui)
    return {"database": database, "record_s": record_s, "first_s": first, "warm_s": warm}


def measure_in_this_process(database: str, tasks: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    with tempfile.TemporaryDirectory(prefix="talkface-ui-bench-") as tmp:
        if database == "sqlite":
            return measure(database, tasks, Path(tmp), env, None)
        with postgres_server() as server:
            return measure(database, tasks, Path(tmp), {**env, "PGPASSWORD": server.password}, server.url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--only", choices=DATABASES, help="measure one database in this process (prints JSON)")
    args = parser.parse_args()
    if args.only:
        print(RESULT + json.dumps(measure_in_this_process(args.only, args.tasks)))
        return
    rows = []
    for database in DATABASES:  # a process each: Prefect's events client stays bound to the first server it met
        out = subprocess.run([sys.executable, __file__, "--only", database, "--tasks", str(args.tasks)],
                             stdout=subprocess.PIPE, text=True, check=True).stdout  # its log on stderr
        rows.append(json.loads(out.rsplit(RESULT, 1)[1]))
    print(f"\nPrefect UI, Runs page with one flow run of {args.tasks} task runs (headless Chromium, this machine)\n")
    print("| database | recording the runs, s | first load, s | later loads (median of 3), s |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['database']} | {r['record_s']:.1f} | {r['first_s']:.2f} | {r['warm_s']:.2f} |")


if __name__ == "__main__":
    main()
