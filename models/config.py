"""What every model config dataclass shares: reading one back from its `to_dict()` form (MLflow params,
checkpoints read with `torch.load(weights_only=True)`)."""
from __future__ import annotations

from dataclasses import fields


def config_from_dict(cls, d: dict, tuples: tuple[str, ...] = ()):
    """`cls(**d)` for a config dataclass `cls`, with the fields named in `tuples` turned back into tuples (they come
    back as lists from `asdict`/JSON). Raises TypeError naming the unknown keys, if any."""
    d = dict(d)
    for key in tuples:
        if key in d:
            d[key] = tuple(d[key])
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise TypeError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    return cls(**d)
