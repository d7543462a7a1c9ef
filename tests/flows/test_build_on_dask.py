"""The build scaled out on Dask (prefect-dask): a cluster started outside the process, and a LocalCluster. Both
must give the very store the default runner gives, with each shard written once and one manifest merge."""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import shards, store
from tests.conftest import SAMPLES, assert_same_store, talkface
from tests.servers import free_port


@pytest.fixture
def dask_cluster(tmp_path):
    """A real `dask scheduler` and two single-threaded `dask worker` processes on loopback, started here the way
    an operator starts them; the workers get no PREFECT_API_URL. Yields (address, [worker log paths])."""
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    dask = [sys.executable, "-m", "dask"]
    logs = [tmp_path / "scheduler.log", tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=logs[0].open("w"), env=env)]
    try:
        for log in logs[1:]:
            procs.append(subprocess.Popen([*dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--host",
                                           "127.0.0.1", "--no-dashboard"], stdout=log.open("w"),
                                          stderr=subprocess.STDOUT, env=env, cwd=tmp_path))
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, logs[1:]
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=60)


def _task_runs(flow_run_id: str) -> list[str]:
    """Names of the task runs the Prefect API holds for a flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            return [r.name for r in runs]

    return asyncio.run(read())


def test_build_runs_on_a_dask_cluster_started_outside(dask_cluster, grid_store, tmp_path):
    address, worker_logs = dask_cluster
    result = talkface("build", "--raw-root", SAMPLES, "--data-root", tmp_path / "data", "--shard-size", "4",
                      "--runner", "dask", "--address", address)
    assert result.returncode == 0, result.stderr[-3000:]
    out = Path(result.stdout.strip().splitlines()[-1])
    assert out.name == grid_store.name  # the runner is not part of the store's version
    assert_same_store(out, grid_store)

    # each shard was built by exactly one task on exactly one of the two workers, and both workers took part
    time.sleep(1)  # the workers' log lines are flushed as the tasks finish
    built = {log: re.findall(r"Task run 'build-(shard-\d+)' - Finished in state Completed", log.read_text())
             for log in worker_logs}
    names = sorted(n for found in built.values() for n in found)
    assert names == shards.completed(out) and all(built.values()), built
    # the workers reported to the flow's Prefect API, not to servers of their own
    assert not any("Starting temporary server" in log.read_text() for log in worker_logs)
    runs = _task_runs(store.read_card(out)["build"]["prefect_flow_run_id"])
    assert sorted(r.removeprefix("build-") for r in runs if r.startswith("build-shard")) == names
    assert sum(r.startswith("merge-manifest") for r in runs) == 1


def test_build_on_a_local_dask_cluster_with_the_embedded_prefect(grid_store, tmp_path):
    """The new user's set-up: no PREFECT_API_URL, so the command starts one temporary Prefect server and the
    LocalCluster's workers report to it instead of starting servers of their own."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": str(tmp_path / "prefect")}
    result = talkface("build", "--raw-root", SAMPLES, "--data-root", tmp_path / "data", "--shard-size", "4",
                      "--runner", "dask", "--workers", "2", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LocalCluster" in result.stderr and result.stderr.count("Starting temporary server") == 1
    assert len(re.findall(r"Task run 'build-shard-\d+' - Finished in state Completed", result.stderr)) == 4
    assert_same_store(Path(result.stdout.strip().splitlines()[-1]), grid_store)


def test_address_needs_the_dask_runner(tmp_path):
    result = talkface("build", "--raw-root", SAMPLES, "--data-root", tmp_path / "data",
                      "--address", "tcp://127.0.0.1:1")
    assert result.returncode != 0 and "needs runner 'dask'" in result.stderr
