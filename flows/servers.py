"""`talkface ui`: the Prefect server and the MLflow tracking server as child processes on the loopback interface
(DESIGN "Set-up and entry points"; servers bind to 127.0.0.1 unless told otherwise)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

from storage import database as pg
from storage import location, tracking


def _exe(name: str) -> str:
    """The console script `name` of this environment (beside the running Python)."""
    return str(Path(sys.executable).with_name(name))


def backend_store(data_root: Path, database: pg.URL | None) -> str:
    """MLflow's backend store: the profile's `talkface_mlflow` database, else data_root's `mlflow.db`."""
    return pg.mlflow_url(database) if database is not None else tracking.sqlite_uri(data_root)


def commands(data_root: Path, host: str, prefect_port: int, mlflow_port: int,
             database: pg.URL | None = None) -> dict[str, list[str]]:
    """The two server command lines: Prefect on its database (`server_env`), MLflow on `backend_store` with
    artifacts in data_root's `mlartifacts` (where the flows write them)."""
    return {
        "prefect": [_exe("prefect"), "server", "start", "--host", host, "--port", str(prefect_port)],
        "mlflow": [_exe("mlflow"), "server", "--backend-store-uri", backend_store(data_root, database),
                   "--default-artifact-root", tracking.artifact_location(data_root), "--host", host,
                   "--port", str(mlflow_port), "--workers", "1"],
    }


def server_env(name: str, host: str, prefect_port: int, database: pg.URL | None = None) -> dict[str, str]:
    """Environment a server needs beyond the caller's. The Prefect UI is told its own API's URL
    (`PREFECT_SERVER_UI_API_URL`); left to itself it takes an exported PREFECT_API_URL or its default port 4200, so on
    any other port the UI could not reach its API ("Can't connect to Server API"). An exported
    PREFECT_SERVER_UI_API_URL wins (the URL browsers use behind a proxy). With a PostgreSQL profile, Prefect stores in
    `talkface_prefect` instead of the SQLite database under $PREFECT_HOME."""
    if name != "prefect":
        return {}
    ui_api_url = os.environ.get("PREFECT_SERVER_UI_API_URL") or f"http://{host}:{prefect_port}/api"
    env = {"PREFECT_SERVER_UI_API_URL": ui_api_url, "PREFECT_SERVER_API_HOST": host,
           "PREFECT_SERVER_API_PORT": str(prefect_port)}
    if database is not None:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = pg.prefect_url(database)
    return env


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll `url` until it answers 200. Raises RuntimeError when the process exits or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with status {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def run_servers(data_root: Path, host: str, prefect_port: int, mlflow_port: int, database: str | None = None,
                echo: Callable[[str], None] = print) -> None:
    """Start both servers (on the PostgreSQL server `database`, a `postgresql://ROLE@HOST:PORT` URL, when given),
    wait until they answer, print their URLs and how to point the CLI at them, then wait; Ctrl-C (or SIGTERM) stops
    both. Raises ValueError for a bad `database` URL, ConnectionError when its databases cannot be reached (both
    before anything starts), RuntimeError when a server fails to start (both are stopped)."""
    server = pg.server_url(database) if database else None
    if server is not None:
        pg.check_reachable(server)
    location.check_reachable(location.as_path(location.normalise(data_root)))
    location.work_root(location.as_path(location.normalise(data_root))).mkdir(parents=True, exist_ok=True)
    # creates (migrates) MLflow's store with the project's artifact location before its server opens it
    experiment_id = tracking.ensure_experiment("talkface", data_root, uri=backend_store(data_root, server))
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_ENABLE_TELEMETRY": "false"}
    processes = {name: subprocess.Popen(cmd, env={**env, **server_env(name, host, prefect_port, server)})
                 for name, cmd in commands(data_root, host, prefect_port, mlflow_port, server).items()}
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        prefect_url, mlflow_url = f"http://{host}:{prefect_port}", f"http://{host}:{mlflow_port}"
        wait_healthy(f"{prefect_url}/api/health", processes["prefect"])
        wait_healthy(f"{mlflow_url}/health", processes["mlflow"])
        exports = f"PREFECT_API_URL={prefect_url}/api" + (f" MLFLOW_TRACKING_URI={mlflow_url}" if server else "")
        echo(f"Prefect UI: {prefect_url}\nMLflow UI:  {tracking.ui_url(mlflow_url, experiment_id)}\n"
             + (f"Databases:  {pg.redacted(pg.prefect_url(server))}, {pg.redacted(pg.mlflow_url(server))}\n"
                if server is not None else "")
             + f"In another terminal:  export {exports}  then  talkface serve  (or any flow)\n"
             "Ctrl-C stops both servers.")
        while all(p.poll() is None for p in processes.values()):
            time.sleep(1)
        raise RuntimeError(", ".join(f"{n} exited ({p.returncode})" for n, p in processes.items() if p.poll() is not None))
    except KeyboardInterrupt:
        echo("stopping the servers")
    finally:
        for p in processes.values():
            if p.poll() is None:
                p.terminate()
        for p in processes.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
