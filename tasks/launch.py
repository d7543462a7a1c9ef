"""Training one stage in several processes (DDP): the caller (the Prefect train task) starts the ranks and waits for
them, so Prefect runs the flow once, not once per rank. Pure: no Prefect.

One node: `python -m torch.distributed.run --standalone --nproc-per-node N -m tasks.rank JOB.json` (torchrun),
on CPU (gloo) or N GPUs (NCCL). Several nodes: inside a SLURM allocation, `srun --nodes M --ntasks-per-node N
python -m tasks.rank JOB.json` (Fabric reads SLURM's environment); deploy/README.md gives both commands for running
by hand. Every rank runs `tasks.training.train_stage` with the same job; rank 0 logs to MLflow when the job names a
run, and writes the result. A rank that dies ends the job (torchrun stops the others) and `run_ranks` raises with
the end of the job's log.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tasks.training import Devices

LOG_TAIL = 40  # lines of the job's log quoted when a rank fails


@dataclass(frozen=True)
class RankJob:
    """What every rank of a DDP job trains (JSON-serialisable: the job file `tasks.rank` reads).

    system, stage: registry names. config: the stage config's `to_dict()`. store_dir, out_dir: as for
    `train_stage`. devices: `tasks.training.Devices` fields. resume_from: a checkpoint, or None. inputs: {stage:
    checkpoint} of the earlier stages whose networks the stage uses (`Stage.uses`).
    tracking: {"uri", "run_id", "prefix"} for rank 0 to log to MLflow, or None. result: where rank 0 writes the
    result (JSON).
    """

    system: str
    stage: str
    config: dict
    store_dir: str
    out_dir: str
    devices: dict
    result: str
    resume_from: str | None = None
    tracking: dict | None = field(default=None)
    inputs: dict = field(default_factory=dict)


def command(job_file: Path, devices: Devices) -> list[str]:
    """The command that starts every rank of the job. Raises ValueError for several nodes outside SLURM."""
    entry = ["-m", "tasks.rank", str(job_file)]
    if devices.num_nodes > 1:
        if "SLURM_JOB_ID" not in os.environ:
            raise ValueError(f"training on {devices.num_nodes} nodes runs inside a SLURM allocation (salloc/sbatch; "
                             "deploy/README.md), or start torchrun on each node yourself")
        return ["srun", f"--nodes={devices.num_nodes}", f"--ntasks-per-node={devices.devices}", sys.executable, *entry]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices.devices}",
            *entry]


def run_ranks(job: RankJob, work_dir: Path, cpu_threads: int = 1) -> dict:
    """Start the job's ranks, wait for them and return rank 0's result (`tasks.rank`: `TrainResult.to_json()`). The job file and the job's log (every rank's output) go to `work_dir`.
    Raises RuntimeError with the log's last lines when any rank fails."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    job_file, log_file = work_dir / f"{job.stage}-job.json", work_dir / f"{job.stage}-ranks.log"
    job_file.write_text(json.dumps(asdict(job), indent=2, sort_keys=True) + "\n")
    Path(job.result).unlink(missing_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(max(cpu_threads, 1)),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    with open(log_file, "w") as log:
        proc = subprocess.run(command(job_file, Devices(**job.devices)), stdout=log, stderr=subprocess.STDOUT,
                              env=env, cwd=work_dir)
    if proc.returncode != 0 or not Path(job.result).is_file():
        tail = "".join(log_file.read_text(errors="replace").splitlines(keepends=True)[-LOG_TAIL:])
        raise RuntimeError(f"{job.system}/{job.stage}: a training rank failed (exit status {proc.returncode}); "
                           f"last lines of {log_file}:\n{tail}")
    return json.loads(Path(job.result).read_text())
