"""Prefect tasks that train and register models, logging to an MLflow run given by id (no global MLflow state)."""
from __future__ import annotations

import re
from pathlib import Path

from mlflow.tracking import MlflowClient
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from models.registry import get_stage, get_system
from storage import location, tracking
from tasks import checkpoint, model_dir as model_dirs
from tasks.launch import RankJob, run_ranks
from tasks.training import Devices, train_stage as train_one_stage

RUN_ID = re.compile(r"^(?:runs:/)?([0-9a-f]{32})/?$")


@task(name="resolve-resume", cache_policy=NO_CACHE)
def resolve_resume(resume: str | None, data_root: Path, system: str,
                   stages: tuple[str, ...]) -> tuple[str | None, dict]:
    """Where training continues: (the MLflow run to log into, or None for a new run; {stage: the checkpoint it
    resumes from, or None to start it}). `resume` is a checkpoint file (the earlier stages' latest checkpoints beside
    it are used too, `tasks.checkpoint.resume_points`) or an MLflow run id / `runs:/<id>` whose latest logged
    checkpoint of each stage is downloaded to <work root>/runs/<id>/checkpoints (`storage.location.work_root`).
    Raises FileNotFoundError / ValueError with the reason when neither works."""
    if resume is None:
        return None, dict.fromkeys(stages)
    if Path(resume).is_file():
        return None, checkpoint.resume_points(Path(resume), system, stages)
    match = RUN_ID.match(resume)
    if match is None:
        raise FileNotFoundError(f"--resume {resume!r}: no such checkpoint file, and not an MLflow run id")
    run_id = match[1]
    client = MlflowClient(tracking.tracking_uri(data_root))
    folder = tracking.download_checkpoints(
        client, run_id, location.work_root(location.as_path(data_root)) / "runs" / run_id / "checkpoints",
        pick=lambda names: [n for n in checkpoint.latest_names(names, stages).values() if n])
    get_run_logger().info("resuming MLflow run %s from its checkpoints in %s", run_id, folder)
    return run_id, checkpoint.latest_checkpoints(folder, stages)


@task(name="train-stage", cache_policy=NO_CACHE)
def train_stage(system: str, stage: str, config, store_dir: Path, out_dir: Path, devices: Devices,
                tracking_uri: str, run_id: str, resume_from: Path | None = None,
                inputs: dict[str, Path] | None = None) -> dict:
    """Train one stage (`tasks.training.train_stage`), logging its values per step as `train/<stage>/<name>`, its
    sample images as `samples/<name>` and every checkpoint (as it is written) to the run. One process trains in
    this task's process; several (`devices.world_size` > 1) are started by `tasks.launch.run_ranks`, which waits
    for them and fails with the job's log when a rank dies. Returns {"checkpoint", "step", "final_loss" (the
    stage's last "loss", else the generator's "g/total", else its first logged value, e.g. the flow net's "epe"),
    "seconds", "samples_per_second", "samples", "device", "world_size", "validation" (`Stage.validate`'s scores,
    also logged as `eval/<stage>/<name>`)}. inputs: {stage: checkpoint} of the earlier stages whose networks it uses."""
    client, prefix = MlflowClient(tracking_uri), f"train/{stage}/"
    if devices.world_size == 1:
        logged = tracking.TrainingLog(client, run_id, prefix, stage, config.steps, get_run_logger())
        result = train_one_stage(system, get_stage(system, stage), config, store_dir, out_dir, devices, resume_from,
                                 logged.on_step, logged.on_sample, logged.on_checkpoint, inputs=inputs).to_json()
        logged.flush()
    else:
        job = RankJob(system=system, stage=stage, config=config.to_dict(), store_dir=str(store_dir),
                      out_dir=str(out_dir), devices=vars(devices), result=str(out_dir / f"{stage}-result.json"),
                      resume_from=str(resume_from) if resume_from else None,
                      tracking={"uri": tracking_uri, "run_id": run_id, "prefix": prefix},
                      inputs={k: str(v) for k, v in (inputs or {}).items()})
        get_run_logger().info("%s/%s: starting %d ranks", system, stage, devices.world_size)
        result = run_ranks(job, out_dir, config.cpu_threads)
    sps = result["samples_per_second"]
    client.log_metric(run_id, f"{prefix}seconds", result["seconds"])
    client.log_metric(run_id, f"{prefix}samples_per_second", sps)
    for name, value in result.get("validation", {}).items():
        client.log_metric(run_id, f"eval/{stage}/{name}", value)
    last = result["losses"][-1][1] if result["losses"] else {}
    final = next((last[k] for k in ("loss", "g/total", *last) if k in last), None)
    return {"checkpoint": str(result["last_checkpoint"]), "step": result["step"],
            "final_loss": final, "seconds": result["seconds"],
            "samples_per_second": sps, "samples": result["n_samples"], "device": result["device"],
            "world_size": result["world_size"], "validation": result.get("validation", {})}


@task(name="register-model", cache_policy=NO_CACHE)
def register_model(system: str, checkpoints: dict[str, Path], out_dir: Path, tracking_uri: str, run_id: str,
                   name: str, alias: str | None, store_version: str) -> dict:
    """Export the system's model directory (`tasks.model_dir.export_model`) into `out_dir`, log it as the run's
    `model` artifact and register it as a new version of MLflow model `name` with `alias`. Returns {"name",
    "version", "uri" (by alias, or by version without one), "version_uri" (models:/name/version)}."""
    client = MlflowClient(tracking_uri)
    model_dir = model_dirs.export_model(get_system(system), checkpoints, out_dir,
                                        {"mlflow_run_id": run_id, "store_version": store_version})
    client.log_artifacts(run_id, str(model_dir), "model")
    version = tracking.register_model(client, name, run_id, "model", alias,
                                      tags={"store_version": store_version, "system": system},
                                      description=f"{system} ({', '.join(checkpoints)}) trained on store "
                                                  f"{store_version}",
                                      model_description=get_system(system).paper)
    version_uri = f"models:/{name}/{version}"
    uri = f"models:/{name}@{alias}" if alias else version_uri
    get_run_logger().info("registered MLflow model %s version %s (%s)", name, version, uri)
    return {"name": name, "version": version, "uri": uri, "version_uri": version_uri}
