"""Flow `import_weights`: a system's weights as its authors released them, converted once into a talkface model
directory and registered in MLflow beside the retrained ones, so `generate`, `evaluate` and the benchmark score the
published model by the same pipeline.

- ATVGnet (Chen et al. CVPR 2019): `atnet_lstm_18.pth` (AT-net) and `generator_23.pth` (VG-net, trained on LRW),
  linked from the lelechen63/ATVGnet README; registered as `atvgnet@authors`, rendering by their protocol
  (`models.atvgnet.authors_generator`).
- Vougioukas et al. (IJCV 2019): `grid.dat`, `timit.dat`, `crema.dat`, linked from the DinoMan/speech-driven-animation
  README; each registered as `sda@authors-grid`, `-timit`, `-crema` (`models.sda.authors_protocol`).

The files are read without running their pickles (`torch.load(weights_only=True)`, the `.dat` files with only
numpy's array globals allowed) and every tensor is checked by name and shape; the MLflow run records each file's
size and sha256.

Run: `talkface import-weights --system atvgnet --file atnet_lstm_18.pth --file generator_23.pth [--basics DIR]`,
`talkface import-weights --system sda --file grid.dat`, or `python -m flows.import_weights …` (same options).
"""
from __future__ import annotations

import re
from pathlib import Path

from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger
from pydantic import BaseModel, Field, field_validator

from flows.parameters import Location
from models.registry import SYSTEMS
from storage import location, tracking
from tasks.steps import import_weights as steps

IMPORTABLE = tuple(name for name, system in SYSTEMS.items() if system.importer is not None)


class ImportParams(BaseModel):
    """Parameters of an import (the Prefect UI form)."""

    system: str = Field("atvgnet", description=f"the system whose authors' files these are: {', '.join(IMPORTABLE)}")
    files: list[Path] = Field(..., min_length=1, description="the released files (ATVGnet: atnet_lstm_18.pth and "
                                                             "generator_23.pth; sda: one of grid/timit/crema.dat)")
    basics: Path | None = Field(None, description="ATVGnet: the authors' basics/ folder (none: the copy talkface "
                                                  "ships, models/atvgnet/authors_basics)")
    data_root: Location = Field("data", description="where mlflow.db and run outputs live")
    alias: str | None = Field(None, description='MLflow alias (none: "authors" for ATVGnet, "authors-grid", '
                                                '"-timit" or "-crema" for sda by the file\'s name)')
    register_as: str | None = Field(None, description="MLflow registered model name (none: the system's name)")
    experiment: str = Field("talkface", description="MLflow experiment")

    @field_validator("system")
    @classmethod
    def _importable(cls, system: str) -> str:
        if system not in IMPORTABLE:
            raise ValueError(f"{system!r}: talkface imports the released weights of {', '.join(IMPORTABLE)} "
                             f"(registered systems: {', '.join(SYSTEMS)})")
        return system

    @field_validator("alias")
    @classmethod
    def _alias_mlflow_takes(cls, alias: str | None) -> str | None:
        if alias is not None and (not re.fullmatch(r"[A-Za-z0-9_-]+", alias) or alias.lower() == "latest"
                                  or re.fullmatch(r"[vV]\d+", alias)):
            raise ValueError(f"alias {alias!r}: letters, digits, _ and - only, and not latest or v<N> (MLflow "
                             "reserves them)")
        return alias

    @field_validator("files")
    @classmethod
    def _files_exist(cls, files: list[Path]) -> list[Path]:
        missing = [str(f) for f in files if not Path(f).is_file()]
        if missing:
            raise ValueError(f"no such file: {', '.join(missing)}")
        return [Path(f).resolve() for f in files]


@flow(name="import_weights")
def import_weights(params: ImportParams) -> dict:
    """Convert and register the authors' files; returns {"run_id", "tracking_uri", "model_uri" (by alias),
    "model_version", "model_version_uri", "alias", "trained_on", "sources"}."""
    log = get_run_logger()
    data_root = location.as_path(params.data_root)
    name = params.register_as or params.system
    uri, run_id, _ = tracking.open_run(data_root, params.experiment, None, f"import-{params.system}",
                                       {"system": params.system, "protocol": "authors"})
    client = MlflowClient(uri)
    try:
        found = steps.sources(params.files)
        tracking.log_params(client, run_id, {"system": params.system, "basics": params.basics or "shipped",
                                             **{f"source.{s['file']}.sha256": s["sha256"] for s in found},
                                             **{f"source.{s['file']}.bytes": s["bytes"] for s in found}})
        out = steps.import_released(params.system, params.files, found, params.basics,
                                    location.work_root(data_root) / "runs" / run_id / "model", uri, run_id, name, params.alias)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    log.info("the authors' %s: %s (version %s)", params.system, out["uri"], out["version"])
    return {"run_id": run_id, "tracking_uri": uri, "model_uri": out["uri"], "model_version": out["version"],
            "model_version_uri": out["version_uri"], "alias": out["alias"], "trained_on": out["trained_on"],
            "sources": out["sources"]}


if __name__ == "__main__":
    from pydantic_settings import CliApp

    import_weights(CliApp.run(ImportParams))  # `python -m flows.import_weights --help` lists the fields
