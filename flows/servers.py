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

from storage import tracking


def _exe(name: str) -> str:
    """The console script `name` of this environment (beside the running Python)."""
    return str(Path(sys.executable).with_name(name))


def commands(data_root: Path, host: str, prefect_port: int, mlflow_port: int) -> dict[str, list[str]]:
    """The two server command lines: Prefect on its own database ($PREFECT_HOME), MLflow on data_root's
    `mlflow.db` with artifacts in `mlartifacts` (where the flows write them)."""
    return {
        "prefect": [_exe("prefect"), "server", "start", "--host", host, "--port", str(prefect_port)],
        "mlflow": [_exe("mlflow"), "server", "--backend-store-uri", tracking.tracking_uri(data_root),
                   "--default-artifact-root", tracking.artifact_location(data_root), "--host", host,
                   "--port", str(mlflow_port), "--workers", "1"],
    }


def server_env(name: str, host: str, prefect_port: int) -> dict[str, str]:
    """Environment a server needs beyond the caller's: the Prefect UI is told its own API's URL
    (`PREFECT_SERVER_UI_API_URL`); left to itself it takes an exported PREFECT_API_URL or its default port 4200, so on
    any other port the UI could not reach its API ("Can't connect to Server API")."""
    if name != "prefect":
        return {}
    return {"PREFECT_SERVER_UI_API_URL": f"http://{host}:{prefect_port}/api", "PREFECT_SERVER_API_HOST": host,
            "PREFECT_SERVER_API_PORT": str(prefect_port)}


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


def run_servers(data_root: Path, host: str, prefect_port: int, mlflow_port: int,
                echo: Callable[[str], None] = print) -> None:
    """Start both servers, wait until they answer, print their URLs and how to point the CLI at Prefect, then
    wait; Ctrl-C (or SIGTERM) stops both. Raises RuntimeError when one fails to start (both are stopped)."""
    Path(data_root).mkdir(parents=True, exist_ok=True)
    tracking.ensure_experiment("talkface", data_root)  # creates mlflow.db with the project's artifact location
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_ENABLE_TELEMETRY": "false"}
    processes = {name: subprocess.Popen(cmd, env={**env, **server_env(name, host, prefect_port)}) for name, cmd in
                 commands(data_root, host, prefect_port, mlflow_port).items()}
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        prefect_url, mlflow_url = f"http://{host}:{prefect_port}", f"http://{host}:{mlflow_port}"
        wait_healthy(f"{prefect_url}/api/health", processes["prefect"])
        wait_healthy(f"{mlflow_url}/health", processes["mlflow"])
        echo(f"Prefect UI: {prefect_url}\nMLflow UI:  {mlflow_url}\n"
             f"In another terminal:  export PREFECT_API_URL={prefect_url}/api  then  talkface serve  (or any flow)\n"
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
