"""What every config dataclass shares (model configs here, training configs in tasks/train_*.py): a primitive dict
form for MLflow params and checkpoints read with `torch.load(weights_only=True)`, and reading it back."""
from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass
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
