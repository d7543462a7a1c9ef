"""The system registry (shaped like `tasks/datasets/`): one line per system. Adding a system: its package under
`models/` exposing `SYSTEM` (`models.system.System`), one line here, its tests.

"syncnet" and "lipreader" are the evaluation's experts (AV sync; WER on GRID): systems with one stage and no
generator, each trained once per benchmark."""
from __future__ import annotations

from models import atvgnet, lipgan, lipreader, sda, syncnet, zheng
from models.system import Stage, System

SYSTEMS: dict[str, System] = {s.name: s for s in (atvgnet.SYSTEM, lipgan.SYSTEM, sda.SYSTEM, zheng.SYSTEM,
                                                  lipreader.SYSTEM, syncnet.SYSTEM)}


def get_system(name: str) -> System:
    """The registered system `name`. Raises KeyError listing the registered systems."""
    if name not in SYSTEMS:
        raise KeyError(f"unknown system {name!r}; registered systems: {', '.join(SYSTEMS)}")
    return SYSTEMS[name]


def get_stage(system: str, stage: str) -> Stage:
    """Stage `stage` of system `system`. Raises KeyError listing the known systems or stages."""
    return get_system(system).stage(stage)
