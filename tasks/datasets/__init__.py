"""Dataset adapters: each turns a raw dataset in its official layout into sorted `ClipSource` records."""
from __future__ import annotations

from tasks.datasets.base import ClipSource, DatasetProfile
from tasks.datasets import crema_d, grid, lrw, tcd_timit

ADAPTERS = {"grid": grid.discover, "crema_d": crema_d.discover, "tcd_timit": tcd_timit.discover, "lrw": lrw.discover}
PROFILES: dict[str, DatasetProfile] = {m.DATASET: m.PROFILE for m in (grid, crema_d, tcd_timit, lrw)}


def discover(dataset: str, raw_root):
    """Every clip of `dataset` under `raw_root`, sorted by clip_id. Raises ValueError for an unknown dataset."""
    try:
        adapter = ADAPTERS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(ADAPTERS)}") from None
    return adapter(raw_root)


__all__ = ["ClipSource", "DatasetProfile", "discover", "ADAPTERS", "PROFILES"]
