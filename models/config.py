"""What every config dataclass shares (model configs, and the training configs of `models/<system>/stages.py`): a
primitive dict form for MLflow params and checkpoints read with `torch.load(weights_only=True)`, and reading it back;
and `TrainConfig`, the training loop's part of every stage config, with its presets."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from typing import get_origin, get_type_hints


def config_to_dict(cfg) -> dict:
    """`dataclasses.asdict(cfg)` with every tuple turned into a list, nested config dataclasses included."""
    def primitive(x):
        if isinstance(x, dict):
            return {k: primitive(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [primitive(v) for v in x]
        return x

    return primitive(asdict(cfg))


def config_from_dict(cls, d: dict):
    """`cls(**d)` for a config dataclass `cls`, the inverse of `config_to_dict`: fields annotated as tuples become
    tuples again (asdict/JSON give lists), fields annotated as config dataclasses are read back from their dicts.
    Raises TypeError naming the unknown keys, if any."""
    d = dict(d)
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise TypeError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    hints = get_type_hints(cls)
    for name, value in d.items():
        kind = hints[name]
        if is_dataclass(kind) and isinstance(value, dict):
            d[name] = config_from_dict(kind, value)
        elif get_origin(kind) is tuple and value is not None:
            d[name] = tuple(value)
    return cls(**d)


class DictConfig:
    """Mixin for config dataclasses: `to_dict()` (primitives only, safe for `torch.load(weights_only=True)` and
    MLflow params) and `from_dict(d)`, its inverse (unknown keys raise TypeError)."""

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict):
        return config_from_dict(cls, d)


PRESETS = ("paper", "small")


@dataclass(frozen=True)
class TrainConfig(DictConfig):
    """What every stage's training config holds (the loop's part); each stage's config subclasses it and adds its own
    learning rates, data windows and network configs.

    steps: total optimizer steps (a resumed run stops at the same total).
    batch_size: the global batch, samples per step over all ranks (each of N ranks takes batch_size / N).
    seed: seeds torch, numpy and python, the model inits, the data draws and the batch order.
    checkpoint_every: write a checkpoint every this many steps (0: only at the end).
    sample_every: log sample images every this many steps (0: never; stages without images ignore it).
    num_workers: DataLoader worker processes per rank ("spawn"); 0 reads in the training process.
    cpu_threads: torch intra-op threads while training on CPU (restored after); 0 leaves torch's setting. On a small,
        shared CPU, 1 avoids OpenMP threads spinning against other processes (steps became 3-10x slower that way).

    `Config.preset(name)` gives the stage's "paper" or "small" preset (`presets()`), with keyword overrides.
    """

    steps: int = 300
    batch_size: int = 16
    seed: int = 0
    checkpoint_every: int = 100
    sample_every: int = 100
    num_workers: int = 0
    cpu_threads: int = 1

    def __post_init__(self):
        if self.steps < 0 or self.batch_size < 1 or self.checkpoint_every < 0 or self.sample_every < 0 \
                or self.num_workers < 0 or self.cpu_threads < 0:
            raise ValueError(f"{type(self).__name__}: need steps >= 0, batch_size >= 1 and non-negative "
                             f"checkpoint_every, sample_every, num_workers, cpu_threads; got {self}")

    @classmethod
    def presets(cls) -> dict:
        """{"paper": config, "small": config}: the stage's published sizes, and its CPU demo and test sizes."""
        return {"paper": cls(), "small": cls()}

    @classmethod
    def preset(cls, name: str, **overrides):
        """The preset `name` with the given fields replaced. Raises KeyError naming the presets on another name."""
        presets = cls.presets()
        if name not in presets:
            raise KeyError(f"unknown preset {name!r}; choose from {', '.join(presets)}")
        return replace(presets[name], **overrides) if overrides else presets[name]


RESUME_MAY_DIFFER = frozenset({"steps", "checkpoint_every", "sample_every", "num_workers", "cpu_threads"})
"""`TrainConfig` fields a resumed run may change: they do not change what the remaining steps compute."""
