"""The PostgreSQL profile, for real (deploy/README.md "PostgreSQL"): `talkface ui --database` runs the Prefect
server and the MLflow server on a real PostgreSQL server (tests/postgres.py); `talkface serve`, pointed at them by the
two printed exports, runs two one-click benchmarks started at the same moment, which build (once), train and
score, and their flow runs and MLflow runs are rows of PostgreSQL's databases. The password reaches only the servers
(PGPASSWORD), and no record, log line or output holds it."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from storage import database as pg
from tests.conftest import SAMPLES, talkface
from tests.postgres import postgres_server
from tests.servers import free_port, served_deployments, start, stop, wait_for


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


def _env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "PGPASSWORD")}
    # not the developer's ~/.pgpass: the password reaches the servers as PGPASSWORD only
    return {**env, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PGPASSFILE": str(tmp_path / "no-pgpass"), **extra}


def test_a_bad_or_unreachable_database_stops_ui_before_anything_starts(postgres, tmp_path):
    data_root, nobody = tmp_path / "data", free_port()
    down = talkface("ui", "--data-root", data_root, "--database", f"postgresql://talkface@127.0.0.1:{nobody}",
                    env=_env(tmp_path, PGPASSWORD=postgres.password), timeout=120)
    assert down.returncode == 2, down.stdout + down.stderr
    assert f"cannot reach database postgresql://talkface@127.0.0.1:{nobody}/{pg.PREFECT_DATABASE}" in down.stderr
    assert "refused" in down.stderr.lower()

    wrong = talkface("ui", "--data-root", data_root, "--database", postgres.url,
                     env=_env(tmp_path, PGPASSWORD="not-the-password-42"), timeout=120)
    assert wrong.returncode == 2 and "password authentication failed" in wrong.stderr, wrong.stderr
    assert "not-the-password-42" not in wrong.stdout + wrong.stderr

    in_url = talkface("ui", "--data-root", data_root, "--database",
                      f"postgresql://talkface:{postgres.password}@127.0.0.1:{postgres.port}", env=_env(tmp_path),
                      timeout=120)
    assert in_url.returncode == 2 and "put no password in the URL" in in_url.stderr, in_url.stderr
    assert postgres.password not in in_url.stdout + in_url.stderr
    assert not data_root.exists()  # refused before any server started or anything was written


def test_two_one_click_benchmarks_at_once_on_postgresql(postgres, tmp_path):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    data_root, prefect_port, mlflow_port = tmp_path / "data", free_port(), free_port()
    ui, ui_lines = start(["ui", "--data-root", data_root, "--database", postgres.url, "--prefect-port", prefect_port,
                          "--mlflow-port", mlflow_port], _env(tmp_path, PGPASSWORD=postgres.password))
    served = None
    try:
        printed = "".join(wait_for(ui_lines, "Ctrl-C stops both servers", 240))
        api, tracking = f"http://127.0.0.1:{prefect_port}/api", f"http://127.0.0.1:{mlflow_port}"
        assert f"export PREFECT_API_URL={api} MLFLOW_TRACKING_URI={tracking}" in printed
        # the commands get the two exports and no credentials
        served, served_lines = start(["serve", "--data-root", data_root],
                                     _env(tmp_path, PREFECT_API_URL=api, MLFLOW_TRACKING_URI=tracking))
        wait_for(served_lines, "serving on", 120)
        served_deployments(api, ["train_and_benchmark/one-click"])
        params = {"raw_root": str(SAMPLES), "data_root": str(data_root), "preset": "small", "steps": 3,
                  "sync_steps": 0, "reader_steps": 0, "overrides": {"atvgnet.vgnet.batch_size": 2}}

        def one_click(_) -> object:
            with temporary_settings(updates={PREFECT_API_URL: api}):
                return run_deployment("train_and_benchmark/one-click", timeout=1200, poll_interval=3,
                                      as_subflow=False, parameters={"params": params})

        with ThreadPoolExecutor(2) as pool:  # the same run, clicked twice at the same moment
            runs = list(pool.map(one_click, range(2)))
        assert all(run.state.is_completed() for run in runs), [run.state for run in runs]
    finally:
        for proc in (served, ui):
            if proc is not None:
                stop(proc)
    ui_output = printed + "".join(ui_lines.queue)

    flow_runs = postgres.query(pg.PREFECT_DATABASE, "SELECT f.name, r.state_type, r.parent_task_run_id IS NULL "
                                                    "FROM flow_run r JOIN flow f ON f.id = r.flow_id")
    assert sorted(r for r in flow_runs if r[0] in ("train_and_benchmark", "build_dataset")) == [
        ("build_dataset", "COMPLETED", False)] * 2 + [("train_and_benchmark", "COMPLETED", True)] * 2, flow_runs
    assert {("train", "COMPLETED", False), ("evaluate", "COMPLETED", False)} <= set(flow_runs), flow_runs
    # one store build: each shard was built by one task run, in one of the two builds; the other found it complete
    (store_dir,) = (data_root / "stores" / "grid").iterdir()
    shard_names = sorted(d.name.removesuffix(".zarr") for d in (store_dir / "shards").iterdir())
    built = postgres.query(pg.PREFECT_DATABASE, "SELECT name FROM task_run WHERE name LIKE 'build-shard-%' AND "
                                                "state_type = 'COMPLETED'")
    assert sorted(name for (name,) in built) == [f"build-{n}" for n in shard_names], built

    mlflow_runs = postgres.query(pg.MLFLOW_DATABASE, "SELECT r.name, r.status, r.run_uuid FROM runs r JOIN "
                                                     "experiments e ON e.experiment_id = r.experiment_id "
                                                     "WHERE e.name = 'talkface'")
    parents = postgres.query(pg.MLFLOW_DATABASE, "SELECT run_uuid FROM tags WHERE key = 'flow' AND "
                                                 "value = 'train_and_benchmark'")
    assert len(parents) == 2 and [r[:2] for r in mlflow_runs].count(("atvgnet", "FINISHED")) == 2, mlflow_runs
    assert postgres.query(pg.MLFLOW_DATABASE, "SELECT t.value FROM experiment_tags t JOIN experiments e ON "
                                              "e.experiment_id = t.experiment_id WHERE e.name = 'talkface' AND "
                                              "t.key = 'mlflow.experimentKind'") == [("custom_model_development",)]
    assert not (data_root / "mlflow.db").exists() and not (tmp_path / "prefect-home" / "prefect.db").exists()
    assert len(list((data_root / "mlartifacts").rglob("leaderboard.md"))) == 2  # artifacts stay in the data root

    for text in (postgres.dump(pg.PREFECT_DATABASE), postgres.dump(pg.MLFLOW_DATABASE), ui_output):
        assert postgres.password not in text


@pytest.fixture
def fresh_postgres():
    """A PostgreSQL server of the test's own: its MLflow experiment is made with this test's data root."""
    with postgres_server() as server:
        yield server


def test_a_build_a_training_and_a_benchmark_on_postgresql_and_s3(fresh_postgres, s3_env, tmp_path):
    """The lab's whole deployment: the servers on PostgreSQL, the data root in a bucket (moto, tests/s3.py), a
    benchmark from the CLI that builds the store into the bucket, trains from it and logs its artifacts there."""
    postgres = fresh_postgres
    root = f"{s3_env.bucket('lab')}/deployment"
    prefect_port, mlflow_port, work = free_port(), free_port(), tmp_path / "work"
    ui, ui_lines = start(["ui", "--data-root", root, "--database", postgres.url, "--prefect-port", prefect_port,
                          "--mlflow-port", mlflow_port],
                         _env(tmp_path, PGPASSWORD=postgres.password, TALKFACE_WORK_ROOT=str(work / "servers"),
                              **s3_env.env))
    try:
        printed = "".join(wait_for(ui_lines, "Ctrl-C stops both servers", 240))
        api, tracking = f"http://127.0.0.1:{prefect_port}/api", f"http://127.0.0.1:{mlflow_port}"
        bench = talkface("benchmark", "--data-root", root, "--preset", "small", "--steps", 3, "--sync-steps", 0,
                         "--reader-steps", 0, "--set", "atvgnet.vgnet.batch_size=2", timeout=1500,
                         env=_env(tmp_path, PREFECT_API_URL=api, MLFLOW_TRACKING_URI=tracking,
                                  TALKFACE_WORK_ROOT=str(work / "cli"), **s3_env.env))
        assert bench.returncode == 0, bench.stdout[-3000:] + bench.stderr[-6000:]
    finally:
        stop(ui)
    output = printed + "".join(ui_lines.queue) + bench.stdout + bench.stderr

    flow_runs = set(postgres.query(pg.PREFECT_DATABASE, "SELECT f.name, r.state_type FROM flow_run r JOIN flow f "
                                                        "ON f.id = r.flow_id"))
    assert {("train_and_benchmark", "COMPLETED"), ("build_dataset", "COMPLETED"), ("train", "COMPLETED"),
            ("evaluate", "COMPLETED")} <= flow_runs, flow_runs
    (version,) = {k.split("/")[3] for k in s3_env.keys("lab", "deployment/stores/grid/")}
    store_url = f"{root}/stores/grid/{version}"
    assert f"store:      {store_url}" in bench.stdout
    keys = s3_env.keys("lab", "deployment/")
    assert f"deployment/stores/grid/{version}/card.json" in keys
    assert any(k.endswith("/shards/shard-00000.json") for k in keys)
    # training read the store in the bucket; MLflow's artifacts are in the bucket beside it
    assert set(postgres.query(pg.MLFLOW_DATABASE, "SELECT value FROM params WHERE key = 'store'")) == {(store_url,)}
    assert postgres.query(pg.MLFLOW_DATABASE, "SELECT artifact_location FROM experiments WHERE name = "
                                              "'talkface'") == [(f"{root}/mlartifacts",)]
    assert [k for k in keys if k.startswith("deployment/mlartifacts/") and k.endswith("/leaderboard.md")]
    assert [k for k in keys if k.startswith("deployment/mlartifacts/") and "/model/" in k]
    runs = postgres.query(pg.MLFLOW_DATABASE, "SELECT name, status FROM runs")
    assert {("atvgnet", "FINISHED"), ("benchmark-atvgnet-grid", "FINISHED")} <= set(runs), runs
    # nothing of the data root on the local disk: no store, no mlflow.db, no artifacts; only the run's checkpoints
    local = sorted(p.relative_to(work).parts[:2] for p in work.rglob("*") if p.is_file())
    assert {parts[0] for parts in local} <= {"cli"} and {parts[1] for parts in local} == {"runs"}, local
    for text in (postgres.dump(pg.PREFECT_DATABASE), postgres.dump(pg.MLFLOW_DATABASE), output):
        assert postgres.password not in text and s3_env.secret not in text
