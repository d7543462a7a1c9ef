"""The daily use from the Prefect UI, for real: `talkface ui` starts a Prefect server and an MLflow server on free
loopback ports, `talkface serve` serves the deployments against that server, and the one-click
`train_and_benchmark` deployment, triggered through the API with a tiny configuration, completes with its MLflow
runs visible through the MLflow server."""
from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SAMPLES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list, env: dict) -> tuple[subprocess.Popen, "queue.Queue[str]"]:
    """A `talkface` subprocess whose output lines arrive in a queue (read by a thread, so nothing blocks)."""
    exe = Path(sys.executable).with_name("talkface")
    proc = subprocess.Popen([str(exe), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    return proc, lines


def wait_for(lines: "queue.Queue[str]", text: str, timeout: float) -> list[str]:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            continue
        if text in seen[-1]:
            return seen
    pytest.fail(f"{text!r} not printed within {timeout} s; output:\n" + "".join(seen[-60:]))


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_ui_serve_and_a_one_click_run(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    data_root, prefect_port, mlflow_port = tmp_path / "data", free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    ui, ui_lines = start(["ui", "--data-root", data_root, "--prefect-port", prefect_port, "--mlflow-port",
                          mlflow_port], env)
    served = None
    try:
        printed = "".join(wait_for(ui_lines, "Ctrl-C stops both servers", 180))
        api = f"http://127.0.0.1:{prefect_port}/api"
        assert f"export PREFECT_API_URL={api}" in printed and f"http://127.0.0.1:{mlflow_port}" in printed
        with urllib.request.urlopen(f"http://127.0.0.1:{prefect_port}/ui-settings", timeout=10) as response:
            assert json.load(response)["api_url"] == api  # the UI's page reaches its own API on this port
        served, served_lines = start(["serve", "--data-root", data_root], {**env, "PREFECT_API_URL": api})
        wait_for(served_lines, "serving on", 120)

        with temporary_settings(updates={PREFECT_API_URL: api}):
            async def deployment(name: str):
                async with get_client() as client:
                    return await client.read_deployment_by_name(name)

            import asyncio

            deadline = time.monotonic() + 120
            while True:  # serve registers the deployments shortly after it starts
                try:
                    build = asyncio.run(deployment("build_dataset/scheduled-build"))
                    one_click = asyncio.run(deployment("train_and_benchmark/one-click"))
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(2)
            assert [s.schedule.cron for s in build.schedules] == ["0 3 * * 1"] and not one_click.schedules
            form = one_click.parameter_openapi_schema["definitions"]["BenchmarkParams"]["properties"]
            choices = {k: v.get("enum", [v.get("const")]) for k, v in form.items() if "enum" in v or "const" in v}
            assert set(choices["dataset"]) == {"grid", "crema_d", "lrw", "tcd_timit"}  # dropdowns in the UI form
            assert choices["preset"] == ["auto", "paper", "small"]
            assert "atvgnet" in json.dumps(form["systems"])  # a multi-select of the registry's systems
            assert all(field.get("description") for field in form.values())

            run = run_deployment("train_and_benchmark/one-click", timeout=900, poll_interval=3, as_subflow=False,
                                 parameters={"params": {"raw_root": str(SAMPLES), "data_root": str(data_root),
                                                        "preset": "small", "steps": 3, "sync_steps": 0, "reader_steps": 0,
                                                        "overrides": {"atvgnet.vgnet.batch_size": 2}}})
            assert run.state.is_completed(), run.state

            async def artifacts():
                from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

                async with get_client() as client:
                    return await client.read_artifacts(artifact_filter=ArtifactFilter(
                        key=ArtifactFilterKey(any_=["benchmark", "evaluation", "build-counts"])))

            published = {a.key: a for a in asyncio.run(artifacts())}
        assert set(published) == {"benchmark", "evaluation", "build-counts"}
        assert published["benchmark"].type == "markdown" and "| 1.29 |" in published["benchmark"].data
        assert "test/grid/lmd" in published["evaluation"].data

        client = MlflowClient(f"http://127.0.0.1:{mlflow_port}")  # through the MLflow server, as the UI reads it
        experiment = client.get_experiment_by_name("talkface")
        runs = client.search_runs([experiment.experiment_id])
        parents = [r for r in runs if r.data.tags.get("flow") == "train_and_benchmark"]
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
        assert [(r.info.run_name, r.info.status) for r in children] == [("atvgnet", "FINISHED")]
        assert "test/grid/atvgnet/lmd" in parents[0].data.metrics
    finally:
        if served is not None:
            stop(served)
        stop(ui)
    assert ui.returncode is not None
