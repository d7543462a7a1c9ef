"""Prefect tasks that bring a system's released weights (its authors' files) into talkface's MLflow registry, logging
to an MLflow run given by id (no global MLflow state)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from mlflow.tracking import MlflowClient
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from models.registry import get_system
from storage import tracking
from tasks import model_dir as model_dirs


def sources(files: list[Path]) -> list[dict]:
    """[{"file": name, "bytes": size, "sha256": hex digest}] of the released files, in the given order (hashlib,
    read in chunks). Raises FileNotFoundError naming a missing file."""
    out = []
    for path in map(Path, files):
        if not path.is_file():
            raise FileNotFoundError(f"released weights not found: {path}")
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        out.append({"file": path.name, "bytes": path.stat().st_size, "sha256": digest})
    return out


def sources_digest(found: list[dict]) -> str:
    """One sha256 over the files' digests, sorted (the same files in any order give the same digest)."""
    return hashlib.sha256("".join(sorted(s["sha256"] for s in found)).encode()).hexdigest()


@task(name="import-released", cache_policy=NO_CACHE)
def import_released(system: str, files: list[Path], found: list[dict], basics: Path | None, out_dir: Path,
                    tracking_uri: str, run_id: str, name: str, alias: str | None) -> dict:
    """Convert the authors' files (`found`: their `sources`) with the system's importer (`System.importer`: read
    without running their pickles, strict key and shape check), write the model directory
    (`tasks.model_dir.export_released`) into `out_dir`, log it as the run's `model` artifact and register it as a
    new version of MLflow model `name` with `alias` (None: the release's own, e.g. "authors" or "authors-grid").
    Returns {"name", "version", "alias", "uri", "version_uri", "trained_on", "sources"}. Raises ValueError when the
    system has no importer, and as the importer (a file that is not the release, a key or shape that does not
    map)."""
    log = get_run_logger()
    spec = get_system(system)
    if spec.importer is None:
        raise ValueError(f"{system}: its authors released no weights talkface imports")
    released = spec.importer([Path(f) for f in files], basics)
    alias = alias or released.alias
    client = MlflowClient(tracking_uri)
    model_dir = model_dirs.export_released(spec, released, out_dir, {"sources": found, "mlflow_run_id": run_id})
    client.log_artifacts(run_id, str(model_dir), "model")
    files_text = ", ".join(s["file"] for s in found)
    version = tracking.register_model(
        client, name, run_id, "model", alias,
        tags={"system": system, "protocol": "authors", "trained_on": released.trained_on,
              "sources_sha256": sources_digest(found)},
        description=f"{system}: the authors' released weights ({files_text}), trained on {released.trained_on}",
        model_description=spec.paper)
    uri = f"models:/{name}@{alias}"
    log.info("registered the authors' %s (%s) as MLflow model %s version %s (%s)", system, files_text, name, version,
             uri)
    return {"name": name, "version": version, "alias": alias, "uri": uri, "version_uri": f"models:/{name}/{version}",
            "trained_on": released.trained_on, "sources": found}
