"""One rank of a DDP training job (`tasks.launch`): `python -m tasks.rank JOB.json`, started by torchrun or srun.

Reads the job, builds the stage and its config from the registry, trains with `tasks.training.train_stage` (Fabric
reads the rank, world size and master address from torchrun's or SLURM's environment), and on rank 0 logs to the
job's MLflow run (when it names one) and writes the result as JSON.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record

from models.registry import get_stage
from tasks.training import Devices, train_stage


@record  # a failing rank's traceback goes into torchrun's summary, which `tasks.launch` quotes
def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    stage = get_stage(job["system"], job["stage"])
    config = stage.Config.from_dict(job["config"])
    devices = Devices(**job["devices"])
    fabric = devices.fabric()
    fabric.launch()
    callbacks = {}
    if fabric.global_rank == 0 and job.get("tracking"):
        from mlflow.tracking import MlflowClient

        from storage.tracking import TrainingLog

        logging.basicConfig(level=logging.INFO, format="%(asctime)s rank 0 %(message)s", stream=sys.stdout)
        t = job["tracking"]
        log = TrainingLog(MlflowClient(t["uri"]), t["run_id"], t["prefix"], job["stage"], config.steps,
                          logging.getLogger("talkface.rank"))
        callbacks = {"on_step": log.on_step, "on_sample": log.on_sample, "on_checkpoint": log.on_checkpoint}
    result = train_stage(job["system"], stage, config, Path(job["store_dir"]), Path(job["out_dir"]), devices,
                         resume_from=Path(job["resume_from"]) if job.get("resume_from") else None, fabric=fabric,
                         inputs={k: Path(v) for k, v in job.get("inputs", {}).items()}, **callbacks)
    if callbacks:
        log.flush()
    if fabric.global_rank == 0:
        tmp = Path(job["result"]).with_suffix(".tmp")
        tmp.write_text(json.dumps(result.to_json()))
        tmp.replace(job["result"])


if __name__ == "__main__":
    main(sys.argv[1])
