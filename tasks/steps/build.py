"""Prefect tasks of the `build_dataset` flow."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from storage import location, manifest, shards, store
from tasks import build, montage
from tasks.datasets import PROFILES, ClipSource, discover
from tasks.datasets.base import sha256_file
from tasks.preprocess import PreprocessParams


@task(name="discover-clips", cache_policy=NO_CACHE)
def discover_clips(dataset: str, raw_root: Path) -> list[ClipSource]:
    """Every source clip of the dataset, sorted, with labels and split."""
    return discover(dataset, raw_root)


@task(name="checksum-sources", cache_policy=NO_CACHE)
def checksum_sources(clips: list[ClipSource], label_files: list[Path], raw_root: Path) -> dict[str, str]:
    """sha256 of every source clip (by clip_id) and label file (by relative path)."""
    sums = {c.clip_id: sha256_file(c.path) for c in clips}
    sums.update({f"label:{p.relative_to(raw_root).as_posix()}": sha256_file(p) for p in label_files})
    return sums


@task(name="build-shard", cache_policy=NO_CACHE, task_run_name="build-{name}")
def build_shard(store_dir: Path, name: str, clips: list[ClipSource], sha256: dict[str, str],
                params: PreprocessParams) -> dict[str, int]:
    """Preprocess one shard's clips and write the shard (its only writer, under the shard's lock); keeps a shard that
    another writer completed meanwhile. Returns its ok/quarantined counts."""
    return build.build_shard(store_dir, name, clips, sha256, params, get_run_logger())


@task(name="verify-shards", cache_policy=NO_CACHE)
def verify_shards(store_dir: Path, shard_names: list[str]) -> dict[str, str | None]:
    """`shards.verify` for every planned shard: name → None (complete) or why not (`shards.NOT_BUILT` if absent)."""
    return shards.check(store_dir, shard_names)


@task(name="merge-manifest", cache_policy=NO_CACHE)
def merge_manifest(store_dir: Path, shard_names: list[str]) -> Path:
    """Merge the shards' manifest rows into the store's manifest.parquet (the build's single merge)."""
    path = location.as_path(store_dir) / store.MANIFEST
    manifest.write(build.merge_manifest(store_dir, shard_names), path)
    return path


@task(name="validate-store", cache_policy=NO_CACHE)
def validate_store(store_dir: Path, fps: float, sample_rate: int, dataset: str) -> dict:
    """Run the dataset's Great Expectations suite on the manifest, quarantine failing clips with their reasons,
    rewrite the manifest. Returns a summary for the card (suite, success, counts, failed checks, Data Docs path)."""
    from tasks.validate import validate_clips

    path = location.as_path(store_dir) / store.MANIFEST
    table = manifest.read(path)
    with location.local_folder(location.as_path(store_dir) / store.VALIDATION) as folder:  # GE writes files
        report = validate_clips(table, folder, fps=fps, sample_rate=sample_rate, profile=PROFILES[dataset])
    if report.failures:
        hit = table.clip_id.isin(report.failures)
        table.loc[hit, "status"] = manifest.QUARANTINED
        table.loc[hit, "reason"] = table.loc[hit, "clip_id"].map(report.failures)
        manifest.write(table, path)
    docs = report.data_docs_index
    return {
        "suite": report.suite,
        "success": report.success,
        "validated_clips": report.n_validated,
        "expectations": report.n_expectations,
        "quarantined_by_validation": sorted(report.failures),
        "failed_expectations": report.failed_expectations,
        "data_docs": f"{store.VALIDATION}/{docs.relative_to(folder).as_posix()}" if docs else None,
    }


@task(name="fit-landmark-pca", cache_policy=NO_CACHE)
def fit_landmark_pca(store_dir: Path) -> Path | None:
    """Fit ATVGnet's landmark PCA on the train split into pca.npz; None when the train split has no ok clip."""
    from storage.landmark_pca import write_store_pca

    table = manifest.read(location.as_path(store_dir) / store.MANIFEST)
    if not ((table.split == "train") & (table.status == manifest.OK)).any():
        return None
    return write_store_pca(store_dir)


@task(name="draw-montage", cache_policy=NO_CACHE)
def draw_montage(store_dir: Path) -> Path | None:
    """montage.png: sample face crops with landmarks; None when no clip is ok."""
    table = manifest.read(location.as_path(store_dir) / store.MANIFEST)
    if not (table.status == manifest.OK).any():
        return None
    return montage.save_png(montage.sample_montage(store_dir, table), location.as_path(store_dir) / "montage.png")


def read_manifest(store_dir: Path) -> pd.DataFrame:
    return manifest.read(location.as_path(store_dir) / store.MANIFEST)
