"""Dataset adapters: each turns a raw dataset in its official layout into sorted `ClipSource` records, names the
label files its store version depends on, and gives the dataset's `DatasetProfile`. One registry, by name."""
from __future__ import annotations

from types import ModuleType

from tasks.datasets.base import ClipSource, DatasetProfile
from tasks.datasets import crema_d, grid, lrw, tcd_timit

ADAPTERS: dict[str, ModuleType] = {m.DATASET: m for m in (grid, crema_d, tcd_timit, lrw)}
PROFILES: dict[str, DatasetProfile] = {name: m.PROFILE for name, m in ADAPTERS.items()}


def adapter(dataset: str) -> ModuleType:
    """The adapter module of `dataset` (`discover`, `label_files`, `PROFILE`). Raises ValueError for an unknown one."""
    try:
        return ADAPTERS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(ADAPTERS)}") from None


def discover(dataset: str, raw_root):
    """Every clip of `dataset` under `raw_root`, sorted by clip_id. Raises ValueError for an unknown dataset."""
    return adapter(dataset).discover(raw_root)


def label_files(dataset: str, raw_root):
    """The label files of `dataset` under `raw_root` (part of the store version). Raises ValueError for an unknown
    dataset."""
    return adapter(dataset).label_files(raw_root)


__all__ = ["ClipSource", "DatasetProfile", "adapter", "discover", "label_files", "ADAPTERS", "PROFILES"]
