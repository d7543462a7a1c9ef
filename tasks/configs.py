"""A stage's training config from its preset and the user's overrides (`--set stage.key=value`, `--config FILE`,
the Prefect form), type-checked by pydantic against the stage's config dataclass, so the CLI and the form repeat no
option and no default of any stage. Pure: no Prefect.

Override keys are dotted paths from the stage name: `atnet.lr`, `vgnet.generator.use_dma`, `vgnet.loss.use_rd`.
Values from the command line are parsed as YAML scalars or lists ("1e-3" -> 0.001, "false" -> False,
"[16, 32]" -> [16, 32]) and then validated, so a wrong type names the key and the expected type.
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

import torch
import yaml
from pydantic import TypeAdapter, ValidationError

from models.system import Stage, System

PRESET_CHOICES = ("auto", "paper", "small")


class ConfigError(ValueError):
    """An override or config file the stages cannot take; `str(exc)` names the key and what it expects."""


def resolve_preset(preset: str) -> str:
    """"auto" -> "paper" when a GPU is present, else "small"; "paper" / "small" as given."""
    if preset not in PRESET_CHOICES:
        raise ConfigError(f"unknown preset {preset!r}; choose from {', '.join(PRESET_CHOICES)}")
    return preset if preset != "auto" else ("paper" if torch.cuda.is_available() else "small")


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """["atnet.lr=1e-3", …] -> {"atnet.lr": 0.001, …} (values parsed as YAML). Raises ConfigError on a malformed
    one."""
    out = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected stage.key=value, e.g. atnet.lr=1e-3")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    """A YAML file {stage: {key: value, nested: {key: value}}} as dotted overrides {"stage.key": value, …}.
    Raises ConfigError when it is unreadable or not a mapping."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of stage names to their settings")

    def flat(d: dict, prefix: str) -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    return flat(data, "")


def _set(tree: dict, cls, path: list[str], value, key: str) -> None:
    """tree[path…] = value, checking each name against the dataclass `cls` (ConfigError naming the known ones)."""
    names = {f.name: f for f in fields(cls)}
    head = path[0]
    if head not in names:
        raise ConfigError(f"{key}: {cls.__name__} has no field {head!r}; its fields: {', '.join(names)}")
    if len(path) == 1:
        tree[head] = value
        return
    nested = _field_type(cls, head)
    if nested is None:
        raise ConfigError(f"{key}: {cls.__name__}.{head} is not a nested config")
    _set(tree[head], nested, path[1:], value, key)


def _field_type(cls, name: str):
    kind = get_type_hints(cls)[name]
    return kind if is_dataclass(kind) else None


def _expected(cls, path: tuple) -> str:
    kind = cls
    for name in path:
        if not isinstance(name, str) or not is_dataclass(kind):
            break
        kind = get_type_hints(kind).get(name, kind)
    return getattr(kind, "__name__", str(kind))


def stage_config(stage: Stage, preset: str, overrides: dict[str, Any]):
    """`stage.Config.preset(preset)` with the overrides for this stage (keys "<stage>.<field>[.<field>…]") applied
    and validated. Raises ConfigError naming the key and the expected type (or the fields it may name)."""
    tree = stage.Config.preset(resolve_preset(preset)).to_dict()
    for key, value in overrides.items():
        name, _, rest = key.partition(".")
        if name == stage.name:
            if not rest:
                raise ConfigError(f"{key}: expected {stage.name}.<field>=value")
            _set(tree, stage.Config, rest.split("."), value, key)
    try:
        return TypeAdapter(stage.Config).validate_python(tree)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "value_error":
            raise ConfigError(f"{stage.name}: {err['msg']}") from None
        raise ConfigError(f"{stage.name}.{where}: expected {_expected(stage.Config, err['loc'])} "
                          f"({err['msg']}; got {err['input']!r})") from None


def system_configs(system: System, stages: list[str], preset: str, overrides: dict[str, Any]) -> dict:
    """{stage: config} for the named stages of `system`. Raises ConfigError for an override of a stage the system
    does not have, or as `stage_config`."""
    known = set(system.stage_names)
    for key in overrides:
        if key.partition(".")[0] not in known:
            raise ConfigError(f"{key}: {system.name} has no stage {key.partition('.')[0]!r}; its stages: "
                              f"{', '.join(system.stage_names)}")
    return {name: stage_config(system.stage(name), preset, overrides) for name in stages}
