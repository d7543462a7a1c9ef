"""MLflow without a server (DESIGN "Set-up"): runs in `sqlite:///<data-root>/mlflow.db`, artifacts in
`<data-root>/mlartifacts`. MLflow 3 defaults to SQLite (3.7+) and keeps the file store for legacy use only, so the
URI is always given explicitly here rather than left to MLflow's default (`./mlflow.db` in the working directory).
An exported MLFLOW_TRACKING_URI (the PostgreSQL profile: `talkface ui --database`'s MLflow server) replaces the
SQLite file for every command. With an object-store data root (`s3://bucket/prefix`) the artifacts go to
`s3://bucket/prefix/mlartifacts` and `mlflow.db` to the local work root (`storage.location.work_root`).
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from storage import location, manifest as manifest_table
from storage.store import MANIFEST


def sqlite_uri(data_root: Path) -> str:
    """"sqlite:///<absolute data_root>/mlflow.db" (four slashes before an absolute POSIX path); for an object-store
    root, its local work root's mlflow.db (SQLite needs a local file)."""
    return f"sqlite:///{_mlflow_db(data_root)}"


def _mlflow_db(data_root: Path) -> Path:
    return location.work_root(location.as_path(data_root)).resolve() / "mlflow.db"


def tracking_uri(data_root: Path) -> str:
    """Where the commands track: $MLFLOW_TRACKING_URI when exported, else `sqlite_uri(data_root)`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or sqlite_uri(data_root)


def artifact_location(data_root: Path) -> str:
    """Where new experiments keep their artifacts: the file URI of `<absolute data_root>/mlartifacts`, or
    `s3://bucket/prefix/mlartifacts` for an object-store root (MLflow's S3 artifact store, boto3, the same
    credentials as the stores)."""
    root = location.as_path(data_root)
    if location.is_remote(root):
        return str(root / "mlartifacts")
    return (Path(root).resolve() / "mlartifacts").as_uri()


# MLflow 3's UI opens an experiment in its GenAI view unless this tag says it is model training
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def ui_url(server: str, experiment_id: str, page: str = "") -> str:
    """The MLflow UI's page of an experiment's runs (or `page` under it, e.g. "/runs/<id>/artifacts/<file>") in the
    model-training view, on the server at `server` (http://HOST:PORT). Since MLflow 3.x's UI keeps one GenAI /
    model-training switch per browser (GenAI unless chosen) and reads it before `EXPERIMENT_KIND`, the URL chooses it
    (`workflowType=machine_learning`)."""
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}{page}?workflowType=machine_learning"


def ensure_experiment(name: str, data_root: Path, uri: str | None = None) -> str:
    """The id of experiment `name` in data_root's tracking store, created (with `artifact_location`) when missing and
    restored when deleted, tagged `EXPERIMENT_KIND` so the MLflow UI shows its runs in the model-training view.
    Creates data_root. Safe against a concurrent creation of the same name. `uri`: another tracking store than
    `tracking_uri(data_root)` (`talkface ui` creates the experiment in the store its server will open).
    """
    location.work_root(location.as_path(data_root)).mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri or tracking_uri(data_root))
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location(data_root),
                                            tags=dict([EXPERIMENT_KIND]))
        except MlflowException:  # created meanwhile by another process
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    if experiment.tags.get(EXPERIMENT_KIND[0]) is None:  # made before talkface tagged it
        client.set_experiment_tag(experiment.experiment_id, *EXPERIMENT_KIND)
    if experiment.artifact_location.rstrip("/") != artifact_location(data_root).rstrip("/"):
        logging.getLogger(__name__).warning(
            "MLflow experiment %r keeps its artifacts in %s, not in this data root's %s: MLflow fixes an "
            "experiment's artifact location when it is made, so its runs log there (a flow's `experiment` parameter "
            "names another experiment)", name,
            experiment.artifact_location, artifact_location(data_root))
    return experiment.experiment_id


def open_run(data_root: Path, experiment: str, run_id: str | None, run_name: str, tags: dict[str, str],
             parent_run_id: str | None = None) -> tuple[str, str, bool]:
    """(tracking URI, run id, created): the given run of data_root's tracking store, or a new one named
    `run_name` with `tags` in `experiment` when `run_id` is None (then the caller ends it); with `parent_run_id`
    the new run is nested under that run (MLflow's `mlflow.parentRunId` tag, shown as a child in the UI)."""
    uri = tracking_uri(data_root)
    if run_id is not None:
        return uri, run_id, False
    if parent_run_id:
        tags = {**tags, "mlflow.parentRunId": parent_run_id}
    run = MlflowClient(uri).create_run(ensure_experiment(experiment, data_root), run_name=run_name, tags=tags)
    return uri, run.info.run_id, True


def log_store_input(client: MlflowClient, run_id: str, store_dir: Path, card: dict, context: str) -> None:
    """Link a store to a run as its input dataset (MLflow's Datasets panel): named `<dataset>-<version>`, digest =
    the store's version digest, source = the store's path, schema and row count from its manifest, tagged
    `mlflow.data.context` = `context` ("train", "test", ...)."""
    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag

    store_dir = location.as_path(store_dir)
    manifest = manifest_table.read(store_dir / MANIFEST)
    with warnings.catch_warnings():  # "source can be interpreted in multiple ways" (both are the local file kind);
        warnings.simplefilter("ignore", UserWarning)  # "integer columns cannot represent missing values" (schema)
        dataset = mlflow.data.from_pandas(manifest, source=_uri(store_dir),
                                          name=f"{card['dataset']}-{card['version']}", digest=card["version"])
        entity = dataset._to_mlflow_entity()
    client.log_inputs(run_id, datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])])


def _uri(path: Path) -> str:
    """file:// URI of a local path, the URL of an object-store one."""
    return str(path) if location.is_remote(path) else Path(path).resolve().as_uri()


def log_params(client: MlflowClient, run_id: str, params: dict) -> None:
    """Log `params` (values stringified) to a run in batches of 100 (MLflow's limit per call). Params are immutable
    in MLflow: where the run already has a key with another value (a resumed run given more steps, say), the new
    value goes to the tag `resume.<key>` instead."""
    logged = client.get_run(run_id).data.params
    fresh = [Param(k, str(v)) for k, v in sorted(params.items()) if k not in logged]
    for i in range(0, len(fresh), 100):
        client.log_batch(run_id, params=fresh[i : i + 100])
    for k, v in sorted(params.items()):
        if k in logged and logged[k] != str(v):
            client.set_tag(run_id, f"resume.{k}", str(v))


def download_checkpoints(client: MlflowClient, run_id: str, dst: Path,
                         pick: Callable[[list[str]], list[str]] | None = None) -> Path:
    """The run's `checkpoints/` artifacts (those `pick` chooses from their artifact paths, when given), downloaded
    into `dst` (created; files already there are kept). Returns `dst`. Raises FileNotFoundError when the run logged
    no checkpoint."""
    names = [a.path for a in client.list_artifacts(run_id, "checkpoints") if not a.is_dir]
    if not names:
        raise FileNotFoundError(f"MLflow run {run_id} has no checkpoints to resume from")
    names = pick(names) if pick else names
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (dst / Path(name).name).is_file():
            with tempfile.TemporaryDirectory(dir=dst) as tmp:  # renamed into place only when complete
                Path(client.download_artifacts(run_id, name, tmp)).replace(dst / Path(name).name)
    return dst


def register_model(client: MlflowClient, name: str, run_id: str, artifact_path: str, alias: str | None,
                   tags: dict[str, str] | None = None, description: str | None = None,
                   model_description: str | None = None) -> str:
    """Register the run's artifact folder `artifact_path` as a new version (`description`) of registered model `name`
    (created with `model_description`, e.g. the system's paper, when missing) and point `alias` at it (MLflow reserves
    "latest"). Returns the version number as a string."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description=model_description)
        except MlflowException:  # created meanwhile by another process
            client.get_registered_model(name)
    source = f"{client.get_run(run_id).info.artifact_uri}/{artifact_path}"
    version = client.create_model_version(name, source, run_id=run_id, tags=tags, description=description)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def released_versions(client: MlflowClient, name: str) -> list[tuple[str, str, dict[str, str]]]:
    """[(alias, version, tags)] of registered model `name`'s versions that `talkface import-weights` registered (tag
    protocol "authors") and an alias points at, sorted by alias; [] when the model does not exist."""
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException:
        return []
    out = []
    for alias, version in sorted(aliases.items()):
        tags = client.get_model_version(name, str(version)).tags
        if tags.get("protocol") == "authors":
            out.append((alias, str(version), dict(tags)))
    return out


def download_model(uri: str, data_root: Path, dst: Path) -> Path:
    """A local model directory for `uri`: an existing directory as is; `models:/<name>@<alias>`,
    `models:/<name>/<version>` or `runs:/<run id>/<path>` downloaded from data_root's tracking store into `dst`.
    Raises FileNotFoundError with the reason when the directory, model, alias, version or run does not exist."""
    if Path(uri).is_dir():
        return Path(uri)
    if not uri.startswith(("models:/", "runs:/")):
        raise FileNotFoundError(f"model {uri!r}: no such directory, and not a models:/ or runs:/ URI")
    uri_store = tracking_uri(data_root)
    if uri_store == sqlite_uri(data_root) and not _mlflow_db(data_root).is_file():
        raise FileNotFoundError(f"model {uri!r}: no MLflow store at {_mlflow_db(data_root)} (train one with "
                                "`talkface train --system atvgnet`, or pass --data-root)")
    # the client, not mlflow.artifacts.download_artifacts: that resolves models:/ against the global registry URI
    client = MlflowClient(uri_store, registry_uri=uri_store)
    path = uri.split(":/", 1)[1].strip("/")
    try:
        if uri.startswith("runs:/"):
            run_id, _, artifact = path.partition("/")
            return Path(client.download_artifacts(run_id, artifact, str(dst)))
        name, sep, alias = path.partition("@")
        if not sep and path.count("/") != 1:
            raise FileNotFoundError(f"model {uri!r}: give models:/<name>@<alias> or models:/<name>/<version>")
        version = (client.get_model_version_by_alias(name, alias) if sep
                   else client.get_model_version(*path.split("/", 1)))
        return Path(client.download_artifacts(version.run_id, version.source.rsplit("/artifacts/", 1)[1], str(dst)))
    except (MlflowException, IndexError) as exc:
        raise FileNotFoundError(f"model {uri!r} not found in {uri_store}: "
                                f"{getattr(exc, 'message', exc)}") from None


LOG_EVERY = 25  # training steps per MLflow batch and per progress line


class TrainingLog:
    """One training stage's per-step values, sample images and checkpoints, sent to one MLflow run: values as
    metrics `<prefix><name>` in batches (one call per LOG_EVERY steps, and at each checkpoint), a progress line per
    batch on `log`, images as `samples/<name>` with their step, each checkpoint as a `checkpoints/` artifact as soon
    as it is written. Used by rank 0 only (`tasks.training` calls back on rank 0)."""

    def __init__(self, client: MlflowClient, run_id: str, prefix: str, stage: str, total_steps: int,
                 log: logging.Logger | logging.LoggerAdapter):
        self.client, self.run_id, self.prefix, self.stage, self.total = client, run_id, prefix, stage, total_steps
        self.pending: list[Metric] = []
        self.log = log

    def on_step(self, step: int, values: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.pending.extend(Metric(f"{self.prefix}{k}", float(v), now, step) for k, v in values.items())
        if step % LOG_EVERY == 0 or step == self.total:
            self.flush()
            self.log.info("%s step %d/%d  %s", self.stage, step, self.total,
                          "  ".join(f"{k} {v:.4f}" for k, v in values.items()))

    def on_sample(self, step: int, images: dict[str, np.ndarray]) -> None:
        for name, image in images.items():
            self.client.log_image(self.run_id, image, key=f"samples/{name}", step=step)

    def on_checkpoint(self, path: Path) -> None:
        self.flush()
        self.client.log_artifact(self.run_id, str(path), "checkpoints")

    def flush(self) -> None:
        for i in range(0, len(self.pending), 1000):  # MLflow takes up to 1000 metrics per call
            self.client.log_batch(self.run_id, metrics=self.pending[i : i + 1000])
        self.pending.clear()
