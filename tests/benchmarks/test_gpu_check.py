"""The GPU check's one chance on a lent machine (benchmarks/gpu_check.sh): the carried wheels, the check's import
path with only the GPU machine's packages, every stage and generator on the CPU in that interpreter, and what the
check writes when a stage fails, a deadline passes or the process dies."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_carry  # noqa: E402
import gpu_check  # noqa: E402


@pytest.fixture(scope="module")
def carry(tmp_path_factory) -> Path:
    """The wheels `--prepare` carries, downloaded (and the sdists built) for Python 3.12; no store (the tests use
    the session's grid_store)."""
    carry = tmp_path_factory.mktemp("carry")
    subprocess.run([sys.executable, "benchmarks/gpu_carry.py", "prepare", "--carry", str(carry), "--wheels-only"],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    return carry


def blocked(args: list[str], wheels: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=gpu_carry.blocked_env(wheels), capture_output=True,
                          text=True, timeout=timeout)


def rows_of(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "gpu_check.jsonl").read_text().splitlines()]


# --- the carry and the blocked interpreter ---------------------------------------------------------------------------

def test_preflight_passes_on_the_carried_wheels_and_a_store(carry, grid_store):
    out = subprocess.run([sys.executable, "benchmarks/gpu_carry.py", "preflight", "--carry", str(carry), "--store",
                          str(grid_store)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "preflight passed" in out.stdout and "FAIL" not in out.stdout
    plan = [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{"kind": "plan"')]
    stages = {(s.name, st.name) for s in gpu_check.SYSTEMS.values() for st in s.stages}
    assert {(r["system"], r["stage"]) for r in plan} == stages
    lipreader = next(r for r in plan if r["system"] == "lipreader")
    assert lipreader["batch"] == 50 and lipreader["distinct"] < 50  # the paper batch, from a few clips repeated


def test_every_carried_requirement_is_met_on_the_gpu_machine(carry):
    wheels = gpu_carry.carried_wheels(carry / "wheels")
    assert {"zarr", "librosa", "lightning-fabric", "python-speech-features"} <= set(wheels)
    assert "pydantic" not in wheels  # models/ and storage/ import without it
    assert gpu_carry.wheel_problems(carry / "wheels", gpu_carry.machine_packages()) == []


def test_the_blocked_interpreter_refuses_what_the_gpu_machine_lacks(carry):
    probe = ("import torch, zarr, numpy\n"
             "for name in ('pydantic', 'prefect', 'mlflow', 'dlib'):\n"
             "    try:\n        __import__(name)\n        print('imported', name)\n"
             "    except ModuleNotFoundError as error:\n        print(error)\n")
    out = blocked(["-c", probe], carry / "wheels")
    assert out.returncode == 0, out.stderr
    assert "imported" not in out.stdout
    assert "No module named 'pydantic': the GPU machine lacks it (distribution pydantic)" in out.stdout


def test_models_storage_and_the_training_loop_import_without_pydantic(carry):
    out = blocked(["-c", "import models.registry, storage.dataset, storage.location, tasks.training, "
                         "tasks.model_dir"], carry / "wheels")
    assert out.returncode == 0, out.stderr


def fake_wheel(folder: Path, filename: str, requires: list[str]) -> Path:
    name, version = filename.split("-")[:2]
    path = folder / filename
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{name}-{version}.dist-info/METADATA", "Metadata-Version: 2.1\nName: {name}\n"
                     + "".join(f"Requires-Dist: {r}\n" for r in requires))
    return path


def test_wheel_problems_names_a_wrong_python_a_second_version_and_a_missing_requirement(tmp_path):
    fake_wheel(tmp_path, "alpha-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", [])
    fake_wheel(tmp_path, "beta-1.0-py3-none-any.whl", ["gamma>=1", "numpy", "delta; python_version < '3.12'",
                                                        "epsilon; extra == 'docs'"])
    fake_wheel(tmp_path, "beta-2.0-py3-none-any.whl", [])
    problems = gpu_carry.wheel_problems(tmp_path, gpu_carry.machine_packages())
    assert any("alpha-1.0-cp311" in p and "not installable on CPython 3.12" in p for p in problems)
    assert any(p.startswith("beta: 2 wheels") for p in problems)
    assert any("requires gamma>=1" in p for p in problems)
    assert not any(word in p for p in problems for word in ("numpy", "delta", "epsilon"))  # met, or not for 3.12


# --- the check on the CPU, in the blocked interpreter -----------------------------------------------------------------

def test_the_whole_check_runs_on_the_cpu_with_only_the_gpu_machines_packages(carry, grid_store, tmp_path):
    out = blocked(["benchmarks/gpu_check.py", "--store", str(grid_store), *gpu_carry.DRY_RUN, "--out-dir",
                   str(tmp_path)], carry / "wheels")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = rows_of(tmp_path)
    assert rows[0]["kind"] == "environment" and rows[0]["torch"] == torch.__version__
    stages = [r for r in rows if r["kind"] == "stage"]
    assert [(r["system"], r["stage"]) for r in stages] == [(s.name, st.name) for s in gpu_check.SYSTEMS.values()
                                                           for st in s.stages]
    assert all(r["status"] == "ok" for r in stages), [r for r in stages if r["status"] != "ok"]
    for r in stages:
        assert r["steps_timed"] == 1 and r["samples_per_s"] > 0 and 0 <= r["dataloader_share"] < 1
        assert r["batch"] >= 1 and r["distinct"] >= 1
    inference = [r for r in rows if r["kind"] == "inference"]
    renderers = [s.name for s in gpu_check.SYSTEMS.values() if s.generator is not None]
    assert [(r["system"], r["batch"]) for r in inference] == [(name, 2) for name in renderers]
    assert all(r["status"] == "ok" and r["precision"].startswith("bf16") for r in inference), inference
    assert all(r["frames_per_s"] > 0 and r["features_s"] is not None for r in inference)
    table = (tmp_path / "gpu_check.md").read_text()
    assert all(f"| {s}/" in table for s in ("atvgnet", "lipgan", "sda", "zheng", "lipreader", "syncnet"))


def test_spawned_workers_read_a_split_repeated_up_to_the_batch(carry, grid_store, tmp_path):
    # the lip reader's whole utterances: 13 train clips, mirrored, repeated to a batch of 64 in a spawned worker
    out = blocked(["benchmarks/gpu_check.py", "--store", str(grid_store), "--device", "cpu", "--preset", "small",
                   "--systems", "lipreader", "--batch", "64", "--steps", "2", "--warmup", "1", "--num-workers", "1",
                   "--out-dir", str(tmp_path)], carry / "wheels")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    row = next(r for r in rows_of(tmp_path) if r["kind"] == "stage")
    assert row["status"] == "ok", row
    assert row["batch"] == 64 and row["distinct"] < 64
    assert "| 64 (" in (tmp_path / "gpu_check.md").read_text()


def test_a_failing_stage_is_recorded_and_the_stages_needing_it_are_skipped(grid_store, tmp_path, monkeypatch):
    real = gpu_check.time_stage

    def flow_net_fails(system, stage, *args):
        if stage.name == "flownet":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real(system, stage, *args)

    monkeypatch.setattr(gpu_check, "time_stage", flow_net_fails)
    assert gpu_check.main(["--store", str(grid_store), "--device", "cpu", "--systems", "lipgan", "--steps", "2",
                           "--warmup", "1", "--num-workers", "0", "--calls", "1", "--batches", "1",
                           "--out-dir", str(tmp_path)]) == 0
    by_stage = {r.get("stage"): r for r in rows_of(tmp_path) if r["kind"] == "stage"}
    assert by_stage["flownet"]["status"] == "error" and "OutOfMemoryError" in by_stage["flownet"]["error"]
    assert by_stage["perceptual"]["status"] == "ok"  # the stage after it still ran
    assert by_stage["lipgan"]["status"] == "skipped" and "flownet" in by_stage["lipgan"]["why"]
    inference = [r for r in rows_of(tmp_path) if r["kind"] == "inference"]
    assert inference[0]["status"] == "skipped" and "lipgan" in inference[0]["why"]
    assert "error: OutOfMemoryError" in (tmp_path / "gpu_check.md").read_text()


def test_past_the_deadline_nothing_starts_and_the_table_is_still_written(grid_store, tmp_path):
    assert gpu_check.main(["--store", str(grid_store), "--device", "cpu", "--deadline", "0",
                           "--out-dir", str(tmp_path)]) == 0
    rows = [r for r in rows_of(tmp_path) if r["kind"] != "environment"]
    n_stages = sum(len(s.stages) for s in gpu_check.SYSTEMS.values())
    assert len([r for r in rows if r["kind"] == "stage"]) == n_stages
    assert all(r["status"] == "skipped" and ("deadline" in r["why"] or "did not train" in r["why"]) for r in rows)
    assert "skipped: deadline" in (tmp_path / "gpu_check.md").read_text()
    assert not any(isinstance(t, threading.Timer) for t in threading.enumerate())  # the watchdog ended with the check


def test_a_stage_past_the_hard_limit_is_stopped_and_the_table_written(grid_store, tmp_path):
    out = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--store", str(grid_store), "--device", "cpu",
                          "--systems", "atvgnet", "--steps", "1000", "--num-workers", "0", "--hard-limit", "4",
                          "--out-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 124, out.stderr[-2000:]
    note = rows_of(tmp_path)[-1]
    assert note == {"kind": "note", "status": "error", "error": "hard limit: stopped after 4 s, in atvgnet/atnet"}
    assert "Timeout" in out.stderr  # the stacks of what hung
    assert "hard limit: stopped after 4 s, in atvgnet/atnet" in (tmp_path / "gpu_check.md").read_text()


def test_the_table_of_a_run_that_died_comes_from_its_rows(tmp_path):
    rows = [{"kind": "environment", "device": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "python": "3.12.3"},
            {"kind": "stage", "system": "atvgnet", "stage": "atnet", "status": "ok", "precision": "bf16-mixed, TF32",
             "batch": 100, "distinct": 4000, "samples_per_s": 5000.0, "step_s": 0.02, "dataloader_share": 0.1,
             "peak_gib": 1.5, "seconds": 9.0}]
    (tmp_path / "gpu_check.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--table", str(tmp_path / "gpu_check.jsonl")],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "GPU check on NVIDIA H100 80GB HBM3" in out.stdout
    assert "| atvgnet/atnet | ok | bf16-mixed, TF32 | 100 | 5000.0 | 0.0200 | 0.10 | 1.50 | 9.0 |" in out.stdout


# --- datasets that hold a paper batch ---------------------------------------------------------------------------------

class Three(Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return {"x": torch.tensor(i)}


class ThreeStage:
    name = "three"

    def dataset(self, store_dir, split, cfg, state=None):
        return Three()

    def extra_state(self, dataset):
        return {"type": type(dataset).__name__}


def test_a_split_smaller_than_the_batch_is_repeated_up_to_it():
    stage = gpu_check.AtLeastBatch(ThreeStage(), batch=8)
    dataset = stage.dataset(Path("."), "train", None)
    assert len(dataset) == 9 and stage.distinct == 3
    assert [int(dataset[i]["x"]) for i in range(9)] == [0, 1, 2] * 3
    assert stage.extra_state(dataset) == {"type": "Three"}  # the stage sees its own dataset
    assert stage.name == "three"
    assert len(gpu_check.AtLeastBatch(ThreeStage(), batch=2).dataset(Path("."), "train", None)) == 3
