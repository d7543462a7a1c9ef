"""The daily use from the Prefect UI, for real: `talkface ui` starts a Prefect server and an MLflow server on free
loopback ports, `talkface serve` serves the deployments against that server, and the one-click
`train_and_benchmark` deployment, triggered through the API with a tiny configuration, completes with its MLflow
runs visible through the MLflow server, and both UIs show the runs in a browser (headless Chromium).

`TALKFACE_SCREENSHOTS=DIR` also saves the README's two screenshots there, taken the same way."""
from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from pathlib import Path

from mlflow.tracking import MlflowClient

from storage.tracking import ui_url
from tests.browser import browser, click_text, page_showing, screenshot
from tests.conftest import SAMPLES
from tests.servers import free_port, served_deployments, start, stop, wait_for


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

        build, one_click = served_deployments(api, ["build_dataset/scheduled-build", "train_and_benchmark/one-click"])
        with temporary_settings(updates={PREFECT_API_URL: api}):
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

        # as a person sees them: the Prefect UI reaches its API on this port and lists the flow runs; the MLflow page
        # `talkface ui` printed opens the experiment in the model-training view, where the runs are listed by name
        mlflow_page = ui_url(f"http://127.0.0.1:{mlflow_port}", experiment.experiment_id)
        assert f"MLflow UI:  {mlflow_page}" in printed
        shots = os.environ.get("TALKFACE_SCREENSHOTS")
        with browser(window=(1400, 1000)) as page:
            shown = page_showing(page, f"http://127.0.0.1:{prefect_port}/runs", [run.name, "train_and_benchmark"])
            assert "Can't connect to Server API" not in shown
            page_showing(page, mlflow_page, [parents[0].info.run_name, "Run Name"])
            if shots:  # the README's two screenshots: the run's artifacts, the leaderboard in MLflow
                page_showing(page, f"http://127.0.0.1:{prefect_port}/runs/flow-run/{run.id}", [run.name, "Artifacts"])
                click_text(page, "Artifacts")
                page_showing(page, None, ["benchmark", "the leaderboard"])
                screenshot(page, Path(shots) / "prefect-one-click-run.png")
                page_showing(page, ui_url(f"http://127.0.0.1:{mlflow_port}", experiment.experiment_id,
                                          f"/runs/{parents[0].info.run_id}/artifacts/leaderboard.md"),
                             ["Leaderboard beside the published numbers"])
                for close in page.find_elements("css selector", "[aria-label*='Close']"):  # MLflow's assistant panel
                    close.click()
                screenshot(page, Path(shots) / "mlflow-leaderboard.png")
    finally:
        if served is not None:
            stop(served)
        stop(ui)
    assert ui.returncode is not None
