"""Flow `build_dataset`: a raw dataset in its official layout → a versioned, validated store
(`<data-root>/stores/<dataset>/<version>/`, DESIGN "The store").

discover → checksum → version digest → take the version's build lock (a second build of the same version waits
for it) → verify every shard there (marker, files, array lengths against the manifest rows) → (all complete and a
card? stop) → build the missing or broken shards in parallel (a local process pool or a Dask cluster,
flows/runners.py), one writer each under the shard's lock → verify again → merge the manifest → the dataset's
Great Expectations suite → landmark PCA → montage → card.json with the dataset's profile (marks it complete).
Run: `talkface build --dataset grid --raw-root RAW --data-root DATA` or `python -m flows.build_dataset …`.
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed
from prefect.runtime import flow_run
from pydantic import BaseModel, Field, field_validator, model_validator
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows.parameters import Location
from flows.runners import Runner, shard_runner, workers_share_api
from storage import location, locks, manifest, shards, store
from storage.crops import DEFAULT_CROPS, check_crops
from tasks import card
from tasks.build import plan_shards
from tasks.datasets import PROFILES, label_files
from tasks.preprocess import PREPROCESS_VERSION, PreprocessParams
from tasks.steps import build as steps



class BuildParams(BaseModel):
    """Parameters of a dataset build (the Prefect UI form)."""

    dataset: Literal["grid", "crema_d", "tcd_timit", "lrw"] = Field(
        "grid", description="dataset whose official layout `raw_root` holds")
    raw_root: Path = Field(..., description="root of the raw dataset, e.g. the folder holding s1/ and alignments/")
    data_root: Location = Field("data", description="stores go to <data_root>/stores/<dataset>/<version>/: "
                                         "a folder, or an object store, s3://bucket/prefix (deploy/README.md)")
    crops: dict[str, tuple[int, int]] = Field(
        default_factory=lambda: dict(DEFAULT_CROPS),
        description="crops to cut, name → [H, W] px: face (ATVGnet, required), mouth (Chen 2018), face_sda "
                    "(Vougioukas et al.); part of the store's version")
    workers: int = Field(1, ge=1, le=256, description="parallel shard builders (processes; with runner dask and "
                         "no address, the LocalCluster's workers)")
    shard_size: int = Field(16, ge=1, le=4096, description="clips per shard")
    max_head_pose_deg: float | None = Field(
        None, gt=0, le=90, description="near-frontal filter: quarantine clips whose yaw, pitch or roll reaches this "
        "many degrees (10: Vougioukas et al.'s LRW subset); empty keeps every pose (angles are recorded either way)")
    runner: Runner = Field("process", description="process: a local process pool; dask: a Dask cluster "
                           "(prefect-dask)")
    address: str | None = Field(None, pattern=r"^[a-z]+://\S+:\d+$", description="scheduler of a running Dask "
                                "cluster, e.g. tcp://10.0.0.5:8786; none with runner dask starts a LocalCluster")

    @field_validator("crops")
    @classmethod
    def _known_crops(cls, crops: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        return check_crops(crops)

    @model_validator(mode="after")
    def _address_needs_dask(self) -> "BuildParams":
        if self.address and self.runner != "dask":
            raise ValueError("address is the scheduler of a Dask cluster: it needs runner 'dask'")
        return self


def _progress() -> Progress:
    return Progress(TextColumn("[bold]building shards"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
                    TimeElapsedColumn())


def _publish(table, counts: dict, montage_png: Path | None, version: str) -> None:
    """Prefect artifacts: counts per split and status (`card.counts(...)["by_split"]`), the quarantine list with
    reasons, the montage."""
    create_table_artifact(
        key="build-counts",
        table=[{"split": s, "ok": c.get("ok", 0), "quarantined": c.get("quarantined", 0)} for s, c in counts.items()],
        description=f"Clips per split and status, store {version}",
    )
    bad = table[table.status != manifest.OK]
    create_table_artifact(
        key="build-quarantine",
        table=[{"clip_id": r.clip_id, "source_path": r.source_path, "reason": r.reason} for r in bad.itertuples()]
        or [{"clip_id": "", "source_path": "", "reason": "nothing quarantined"}],
        description=f"{len(bad)} quarantined clips of store {version}",
    )
    if montage_png:
        data = base64.b64encode(montage_png.read_bytes()).decode()
        create_markdown_artifact(
            key="build-montage",
            markdown=f"# Sample crops of store `{version}`\n\n`{montage_png}`\n\n![montage](data:image/png;base64,{data})",
            description="Face crops with their 68 landmarks",
        )


@flow(name="build_dataset")
def build_dataset(params: BuildParams) -> str:
    """Build (or resume, or confirm up to date) the store for `params`; returns the store's path."""
    log = get_run_logger()
    started = datetime.now(timezone.utc)
    raw_root, data_root = params.raw_root.resolve(), location.as_path(params.data_root)
    location.check_reachable(data_root)  # an unreachable bucket fails here, before any work
    pre = PreprocessParams(crops=params.crops, max_head_pose_deg=params.max_head_pose_deg)

    clips = steps.discover_clips(params.dataset, raw_root)
    sums = steps.checksum_sources(clips, label_files(params.dataset, raw_root), raw_root)
    settings = {"dataset": params.dataset, "shard_size": params.shard_size, **pre.model_dump()}
    version = store.version_digest(list(sums.items()), settings, PREPROCESS_VERSION)
    out = store.store_dir(data_root, params.dataset, version)
    log.info("%d source clips under %s → store %s", len(clips), raw_root, out)
    purpose = f"the build of store {params.dataset}/{version} (flow run {flow_run.get_id()})"
    with locks.hold(store.lock_path(out), purpose, log):  # one builder per store version (storage/store.py)
        return _build_locked(params, out, clips, sums, settings, pre, started, log)


def _build_locked(params: BuildParams, out: Path, clips: list, sums: dict[str, str], settings: dict,
                  pre: PreprocessParams, started: datetime, log) -> str:
    """The build proper, under the store version's lock: verify what is there, build what is missing or broken,
    verify again, then merge, validate and write the card."""
    version = out.name
    plan = plan_shards(clips, params.shard_size)
    names = [name for name, _ in plan]
    problems = {n: why for n, why in steps.verify_shards(out, names).items() if why is not None}
    broken = {n: why for n, why in problems.items() if why != shards.NOT_BUILT}
    for name, why in broken.items():
        log.warning("%s fails verification (%s): it will be rebuilt", name, why)
    if store.is_complete(out):
        if not problems:
            log.info("store %s is up to date (version %s): nothing to do", out, version)
            return str(out)
        log.warning("store %s has a card but %d of its shards fail verification: card removed until they are "
                    "rebuilt", out, len(problems))
        store.retract_card(out)
    raw_root = str(params.raw_root.resolve())
    store.write_build_params(out, {**settings, "raw_root": raw_root})
    todo = [(name, group) for name, group in plan if name in problems]
    if len(todo) < len(plan):
        log.info("resuming: %d of %d shards already complete, building the other %d", len(plan) - len(todo),
                 len(plan), len(todo))
    totals = {"ok": 0, "quarantined": 0}
    with _progress() as bar:
        task_id = bar.add_task("shards", total=len(plan), completed=len(plan) - len(todo), note="")

        def count(result: dict) -> None:
            for k in totals:
                totals[k] += result[k]
            bar.update(task_id, advance=1, note=f"{totals['ok']} ok, {totals['quarantined']} quarantined")

        if params.runner == "process" and (params.workers == 1 or len(todo) <= 1):
            for name, group in todo:
                count(steps.build_shard(out, name, group, sums, pre))
        elif todo:
            workers = min(params.workers, len(todo))
            with workers_share_api(), shard_runner(params.runner, workers, params.address) as runner:
                futures = [runner.submit(steps.build_shard, {"store_dir": out, "name": name, "clips": group,
                                                             "sha256": sums, "params": pre}) for name, group in todo]
                for future in as_completed(futures):
                    count(future.result())

    failed = {n: why for n, why in steps.verify_shards(out, names).items() if why is not None}
    if failed:  # the card is written only after every shard passes
        raise RuntimeError(f"store {out}: shards fail verification after their build: "
                           + "; ".join(f"{n}: {why}" for n, why in sorted(failed.items())))
    steps.merge_manifest(out, names)
    validation = steps.validate_store(out, pre.fps, pre.sample_rate, params.dataset)
    steps.fit_landmark_pca(out)
    montage_png = steps.draw_montage(out)
    table = steps.read_manifest(out)
    card_doc = card.make_card(PROFILES[params.dataset], version, {**settings, "raw_root": raw_root}, table,
                              validation, started, flow_run.get_id())
    c = card_doc["counts"]
    _publish(table, c["by_split"], montage_png, version)
    store.write_card(out, card_doc)
    log.info("store %s complete: %d clips, %d ok, %d quarantined", out, c["clips"], c["ok"], c["quarantined"])
    return str(out)


if __name__ == "__main__":
    from pydantic_settings import CliApp

    print(build_dataset(CliApp.run(BuildParams)))  # `python -m flows.build_dataset --help` lists the fields
