"""Flow `train`: a registered system (or one of its stages) on a store, logged to MLflow (params, per-step losses,
sample images, checkpoints); with all its stages trained, the system's model directory is registered in MLflow as
`<system>` with an alias, ready for `talkface generate` / `talkface evaluate`.

Systems and their stages come from `models.registry` (`talkface systems`): "atvgnet" trains AT-net then VG-net (the
paper's decoupled training), "lipgan" and "sda" the other seed systems, "syncnet" the audio-visual sync expert that
`evaluate` scores AV offset and confidence with, "lipreader" the LipNet-style reader it scores WER with. Each stage's settings are its config dataclass at a preset, with overrides (`tasks.configs`).

Run: `talkface train --system atvgnet --store STORE [--stage S] [--preset small] [--set atnet.lr=1e-3] [--steps N]
[--devices N] [--resume CHECKPOINT|RUN_ID]` or `python -m flows.train …` (same options).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger
from pydantic import BaseModel, Field, model_validator

from flows.parameters import Location
from models.registry import SYSTEMS, get_system
from storage import location, store, tracking
from storage.crops import CROPS
from tasks import configs as stage_configs
from tasks.steps import train as steps
from tasks.training import ACCELERATORS, STRATEGIES, Devices

SystemName = Literal[tuple(SYSTEMS)]  # type: ignore[valid-type]
# the typed stage settings of each registered system; the form shows the chosen one's stages and fields
_SETTINGS = tuple(stage_configs.system_settings_model(s) for s in SYSTEMS.values())
SystemSettings = Annotated[Union[_SETTINGS], Field(discriminator="system")] if len(_SETTINGS) > 1 else _SETTINGS[0]


class TrainParams(BaseModel):
    """Parameters of a training run (the Prefect UI form). Stage settings are the stage configs' fields (`talkface
    systems --configs`), never repeated here: `settings` is generated from them (typed, per system: the form shows
    the chosen system's stages), `overrides` and `config_file` take them as dotted keys. Applied in the order
    config_file, settings, steps, overrides."""

    system: SystemName = Field("atvgnet", description="registered system to train (`talkface systems`)")
    stage: str | None = Field(None, description="train only this stage (none: every stage in order, then register "
                                                "the model)")
    store: Location = Field(..., description="a complete store, <data-root>/stores/<dataset>/<version> "
                                     "(a folder or an s3:// URL)")
    data_root: Location = Field("data", description="MLflow (mlflow.db, mlartifacts) and run outputs live "
                                         "here (with an s3:// root: artifacts there, the rest in its work root)")
    preset: Literal["auto", "paper", "small"] = Field(
        "auto", description='stage configs: "paper" (published sizes), "small" (CPU sizes), "auto" (paper on GPU)')
    steps: int | None = Field(None, ge=1, description="optimizer steps of every trained stage (none: the preset's)")
    settings: SystemSettings | None = Field(  # type: ignore[valid-type]
        None, description="the system's stage settings, by stage and field (empty: the preset's value)")
    overrides: dict[str, Any] = Field(default_factory=dict, description='stage settings as dotted keys, e.g. '
                                      '{"atnet.lr": 0.001, "vgnet.generator.use_dma": false}')
    config_file: Path | None = Field(None, description="YAML {stage: {key: value}} applied before `overrides`")
    accelerator: Literal[ACCELERATORS] = Field(  # type: ignore[valid-type]
        "auto", description="auto (GPU when present), cpu or cuda")
    devices: int = Field(1, ge=1, description="processes (GPUs) per node; more than one trains under DDP")
    num_nodes: int = Field(1, ge=1, description="machines (inside a SLURM allocation)")
    strategy: Literal[STRATEGIES] = Field(  # type: ignore[valid-type]
        "auto", description="auto (DDP when devices x nodes > 1) or ddp")
    resume: str | None = Field(None, description="continue at its step: a checkpoint file, or an MLflow run id whose "
                                                 "logged checkpoints to continue (logging into that run)")
    inputs: dict[str, Path] = Field(default_factory=dict, description="checkpoints of earlier stages whose trained "
                                    "networks a stage uses, by stage (training the whole system fills them in)")
    register_as: str | None = Field(None, description="MLflow registered model name (none: the system's name)")
    alias: str = Field("champion", description='alias pointed at the new model version ("" for none)')
    experiment: str = Field("talkface", description="MLflow experiment")
    run_id: str | None = Field(None, description="log into this existing MLflow run instead of a new one")
    parent_run_id: str | None = Field(None, description="nest the new MLflow run under this one (a benchmark run)")

    @model_validator(mode="before")
    @classmethod
    def _system_from_settings(cls, data: Any) -> Any:
        """The form's settings name their system: it need not be chosen twice."""
        if isinstance(data, dict) and isinstance(data.get("settings"), dict) and "system" not in data:
            data = {**data, "system": data["settings"].get("system")}
        return data

    @model_validator(mode="after")
    def _settings_of_the_system(self) -> "TrainParams":
        if self.settings is not None and self.settings.system != self.system:
            raise ValueError(f"settings are {self.settings.system}'s but the system is {self.system}")
        return self

    def stage_names(self) -> list[str]:
        """The stages to train, in order. Raises KeyError listing the system's stages for an unknown one."""
        system = get_system(self.system)
        return [system.stage(self.stage).name] if self.stage else list(system.stage_names)

    def configs(self) -> dict:
        """{stage: config} of the stages to train (preset, steps, config file, overrides). Raises
        tasks.configs.ConfigError naming a bad key or value."""
        overrides = stage_configs.read_config_file(self.config_file) if self.config_file else {}
        overrides.update(stage_configs.settings_overrides(self.settings))
        names = self.stage_names()
        if self.steps is not None:
            overrides.update({f"{name}.steps": self.steps for name in names})
        overrides.update(self.overrides)
        configs = stage_configs.system_configs(get_system(self.system), names, self.preset, overrides)
        ranks = self.devices * self.num_nodes
        for name, cfg in configs.items():
            if cfg.batch_size % ranks:
                raise stage_configs.ConfigError(f"{name}.batch_size={cfg.batch_size}: the global batch must split "
                                                f"evenly over the {ranks} processes")
        return configs

    def device_spec(self) -> Devices:
        return Devices(accelerator=self.accelerator, devices=self.devices, num_nodes=self.num_nodes,
                       strategy=self.strategy)


def missing_fields(store_dir: Path, fields: set[str]) -> list[str]:
    """The store fields in `fields` that `store_dir`'s shards do not hold (read from its first complete shard)."""
    from storage import shards

    names = shards.completed(store_dir)
    held = set(shards.open_shard(store_dir, names[0]).array_keys()) if names else set()
    return sorted(set(fields) - held)


def require_fields(store_dir: Path, system: str, stages: list[str]) -> None:
    """Raises ValueError when the store lacks a field the stages read (`Stage.reads`), naming the fields and giving
    the build command of a store that has them."""
    reads = {f for name in stages for f in get_system(system).stage(name).reads}
    missing = missing_fields(store_dir, reads)
    if missing:
        add = {name: CROPS[name].default_size for name in missing if name in CROPS}
        raise ValueError(f"{system} ({', '.join(stages)}) reads {', '.join(missing)}, which {store_dir} does not "
                         f"hold (built without it): build a store that has it with\n  "
                         f"{store.build_command(store_dir, add_crops=add)}")


def stage_inputs(stage, config, results: dict[str, dict], start: dict, given: dict[str, Path]) -> dict[str, Path]:
    """{stage: checkpoint} of the earlier stages whose networks `stage` uses: trained in this run, else given
    (`TrainParams.inputs`), else the resume points found beside a resumed checkpoint; the loop says which is missing."""
    out = {}
    for used, _ in stage.uses(config).values():
        found = (results.get(used.name, {}).get("checkpoint") or given.get(used.name) or start.get(used.name))
        if found:
            out[used.name] = Path(found)
    return out


@flow(name="train")
def train(params: TrainParams) -> dict:
    """Train `params.system`'s stages on `params.store`; returns {"run_id", "tracking_uri", "stages": {stage: the
    train-stage task's result}, "checkpoint" and "final_loss" (of the last stage)} and, when every stage was
    trained, "model_uri", "model_version", "model_version_uri"."""
    log = get_run_logger()
    store_dir, data_root = location.as_path(params.store), location.as_path(params.data_root)
    card = store.read_card(store_dir)
    system, names, configs, devices = get_system(params.system), params.stage_names(), params.configs(), \
        params.device_spec()
    require_fields(store_dir, params.system, names)
    resumed_run, start = steps.resolve_resume(params.resume, data_root, params.system, system.stage_names)
    uri, run_id, own_run = tracking.open_run(data_root, params.experiment, params.run_id or resumed_run,
                                             f"{params.system}-{card['dataset']}",
                                             {"system": params.system, "dataset": card["dataset"]},
                                             parent_run_id=params.parent_run_id)
    client = MlflowClient(uri)
    own_run = own_run or resumed_run is not None
    if own_run and not resumed_run:
        tracking.log_store_input(client, run_id, store_dir, card, "train")
    if resumed_run:
        client.update_run(run_id, status="RUNNING")
        client.set_tag(run_id, "resumed", "true")
    settings = {k: v for name in names for k, v in stage_configs.dotted(configs[name].to_dict(), f"{name}.").items()}
    settings.update(system=params.system, stages=",".join(names), preset=stage_configs.resolve_preset(params.preset),
                    store=str(store_dir), store_version=card["version"], dataset=card["dataset"],
                    resume=params.resume or "", devices=devices.world_size)
    tracking.log_params(client, run_id, settings)
    log.info("MLflow run %s: training %s (%s) on %s", run_id, params.system, ", ".join(names), store_dir)
    out_dir = location.work_root(data_root) / "runs" / run_id
    results: dict[str, dict] = {}
    try:
        for name in names:
            inputs = stage_inputs(system.stage(name), configs[name], results, start, params.inputs)
            results[name] = steps.train_stage(params.system, name, configs[name], store_dir, out_dir / "checkpoints",
                                              devices, uri, run_id, start[name], inputs)
        result = {"stages": results, "checkpoint": results[names[-1]]["checkpoint"],
                  "final_loss": results[names[-1]]["final_loss"]}
        if params.stage is None:
            model = steps.register_model(params.system, {n: Path(r["checkpoint"]) for n, r in results.items()},
                                         out_dir / "model", uri, run_id, params.register_as or params.system,
                                         params.alias or None, card["version"])
            result.update(model_uri=model["uri"], model_version=model["version"],
                          model_version_uri=model["version_uri"])
    except BaseException:
        if own_run:
            client.set_terminated(run_id, "FAILED")
        raise
    if own_run:
        client.set_terminated(run_id)
    return {"run_id": run_id, "tracking_uri": uri, **result}


if __name__ == "__main__":
    from pydantic_settings import CliApp

    train(CliApp.run(TrainParams))  # `python -m flows.train --help` lists the fields
