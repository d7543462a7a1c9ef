"""The Prefect deployments `talkface serve` serves (and `deploy/prefect.yaml` declares for work pools):

- `build_dataset/scheduled-build`: rebuilds a store on a cron schedule (weekly by default); an unchanged source
  tree makes it a no-op that says so;
- `train_and_benchmark/one-click`: no schedule; a person starts it from the Prefect UI ("Run" → "Custom run") and
  fills its typed form (systems and dataset as dropdowns from the registries, every field described), or through the
  API.
"""
from __future__ import annotations

from pathlib import Path

from prefect.deployments.runner import EntrypointType, RunnerDeployment

from flows.build_dataset import build_dataset
from flows.train_and_benchmark import BUNDLED_GRID, train_and_benchmark
from storage import location

WEEKLY = "0 3 * * 1"  # Mondays 03:00


def deployments(raw_root: Path | None = None, data_root: str | Path = "data", dataset: str = "grid",
                build_cron: str = WEEKLY) -> list[RunnerDeployment]:
    """The two deployments, their default parameters pointing at `raw_root` (the bundled GRID clips when None) and
    `data_root` (a local one made absolute: the served runs may start in another directory; or an s3:// URL)."""
    raw_root = (raw_root or BUNDLED_GRID).resolve()
    data_root = location.normalise(data_root)
    common = dict(entrypoint_type=EntrypointType.MODULE_PATH, tags=["talkface", dataset])
    build = build_dataset.to_deployment(
        "scheduled-build", cron=build_cron, description=f"Rebuild the {dataset} store from {raw_root} ({build_cron})",
        parameters={"params": {"dataset": dataset, "raw_root": str(raw_root), "data_root": str(data_root)}}, **common)
    benchmark = train_and_benchmark.to_deployment(
        "one-click", description="Build (reused when unchanged) → train each system → evaluate → leaderboard beside the papers",
        parameters={"params": {"dataset": dataset, "raw_root": str(raw_root), "data_root": str(data_root)}}, **common)
    return [build, benchmark]
