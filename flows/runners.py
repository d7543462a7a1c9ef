"""Task runners of the build: a local process pool, or a Dask cluster through prefect-dask (DESIGN, "Who uses it":
the same flows scaled out on a Dask cluster).

Either way the flow submits one `build-shard` task per shard (the shard's only writer) and merges the manifest
itself, once, after every shard is back. Workers report their task runs to the flow's own Prefect API: with the
embedded default (no PREFECT_API_URL) the flow's temporary server's URL is put into the settings the tasks are
submitted under, so a worker neither starts a server of its own nor logs to another database.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Literal

from prefect.context import get_run_context
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner

Runner = Literal["process", "dask"]


@contextmanager
def workers_share_api() -> Iterator[None]:
    """Inside a flow run: tasks submitted in this block report to the API this flow run uses (module docstring)."""
    if PREFECT_API_URL.value():
        yield
        return
    url = str(get_run_context().client.api_url)
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


def shard_runner(runner: Runner, workers: int, address: str | None = None) -> TaskRunner:
    """The task runner for the shard tasks (use as a context manager).

    runner "process": a pool of `workers` local processes. runner "dask": the Dask scheduler at `address`
    ("tcp://HOST:PORT"; its workers need talkface installed and the raw and data roots at the same paths), or, when
    `address` is None, a temporary LocalCluster of `workers` single-threaded processes on 127.0.0.1 with its
    dashboard on a free loopback port (BuildParams refuses an address without "dask"). Raises ValueError for an
    unknown runner.
    """
    if runner == "process":
        return ProcessPoolTaskRunner(max_workers=workers)
    if runner == "dask":
        from prefect_dask import DaskTaskRunner

        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={
            "n_workers": workers, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0"})
    raise ValueError(f"unknown runner {runner!r}; known: process, dask")
