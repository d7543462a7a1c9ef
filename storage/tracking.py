"""MLflow without a server (DESIGN "Set-up"): runs in `sqlite:///<data-root>/mlflow.db`, artifacts in
`<data-root>/mlartifacts`. MLflow 3 defaults to SQLite (3.7+) and keeps the file store for legacy use only, so the
URI is always given explicitly here rather than left to MLflow's default (`./mlflow.db` in the working directory).
"""
from __future__ import annotations

from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


def tracking_uri(data_root: Path) -> str:
    """"sqlite:///<absolute data_root>/mlflow.db" (four slashes before an absolute POSIX path)."""
    return f"sqlite:///{Path(data_root).resolve() / 'mlflow.db'}"


def artifact_location(data_root: Path) -> str:
    """file URI of `<absolute data_root>/mlartifacts`, where new experiments keep their artifacts."""
    return (Path(data_root).resolve() / "mlartifacts").as_uri()


def ensure_experiment(name: str, data_root: Path) -> str:
    """The id of experiment `name` in data_root's tracking store, created (with `artifact_location`) when missing and
    restored when deleted. Creates data_root. Safe against a concurrent creation of the same name.
    """
    Path(data_root).mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=tracking_uri(data_root))
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location(data_root))
        except MlflowException:  # created meanwhile by another process
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def open_run(data_root: Path, experiment: str, run_id: str | None, run_name: str, tags: dict[str, str]) -> tuple[str, str, bool]:
    """(tracking URI, run id, created): the given run of data_root's tracking store, or a new one named
    `run_name` with `tags` in `experiment` when `run_id` is None (then the caller ends it)."""
    uri = tracking_uri(data_root)
    if run_id is not None:
        return uri, run_id, False
    run = MlflowClient(uri).create_run(ensure_experiment(experiment, data_root), run_name=run_name, tags=tags)
    return uri, run.info.run_id, True
