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
from typing import Any, Literal, Optional, get_type_hints

import torch
import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model
from pydantic import Field as PydanticField

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


def dotted(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: nested settings as dotted override keys (and MLflow param names)."""
    out = {}
    for k, v in tree.items():
        out.update(dotted(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
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

    return dotted(data)


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


# ------------------------------------------------------------------------------------------- the Prefect form


def field_docs(cls) -> dict[str, str]:
    """{field: description} from a config dataclass's docstring lines "name: text" or "a, b, c: text" (continuation
    lines indented deeper), the convention of every config here; fields it does not document are left out."""
    names, docs, current, indent = {f.name for f in fields(cls)}, {}, [], 0
    for line in (cls.__doc__ or "").splitlines():
        stripped = line.strip()
        head, sep, text = stripped.partition(": ")
        keys = [k.strip() for k in head.split(",")] if sep else []
        if keys and all(k in names for k in keys):
            current, indent = keys, len(line) - len(line.lstrip())
            for k in keys:
                docs[k] = text
        elif current and stripped and len(line) - len(line.lstrip()) > indent:
            for k in current:
                docs[k] += " " + stripped
        else:
            current = []
    return docs


def settings_model(cls, name: str | None = None) -> type[BaseModel]:
    """A pydantic model of the config dataclass `cls` with every field optional (None: the preset's value), nested
    configs as nested models, each field described from the docstring (`field_docs`): the typed part of the Prefect
    form. `settings_overrides` turns a filled-in one into dotted overrides."""
    hints, docs = get_type_hints(cls), field_docs(cls)
    spec = {}
    for f in fields(cls):
        kind = hints[f.name]
        kind = settings_model(kind) if is_dataclass(kind) else kind
        spec[f.name] = (Optional[kind], PydanticField(None, description=docs.get(f.name)))
    return create_model(name or f"{cls.__name__}Settings", __config__=ConfigDict(extra="forbid",
                                                                                  protected_namespaces=()),
                        __doc__=(cls.__doc__ or "").split("\n\n")[0], **spec)


def system_settings_model(system: System) -> type[BaseModel]:
    """The form of one system's stage settings: {"system": its name, <stage>: that stage's `settings_model` or
    None}, a member of the discriminated union `flows.train.TrainParams.settings` (keyed by "system")."""
    spec = {"system": (Literal[system.name], system.name)}
    for stage in system.stages:
        spec[stage.name] = (Optional[settings_model(stage.Config, f"{system.name}_{stage.name}_settings")],
                            PydanticField(None, description=(stage.Config.__doc__ or "").split("\n")[0]))
    return create_model(f"{system.name}_settings", __config__=ConfigDict(extra="forbid"),
                        __doc__=f"Stage settings of {system.name}; empty fields keep the preset's values.", **spec)


def settings_overrides(settings: BaseModel | None) -> dict[str, Any]:
    """A filled-in `system_settings_model` → dotted overrides {"<stage>.<field>[.<field>…]": value} of the fields
    that were set (None: keep the preset's)."""
    if settings is None:
        return {}
    return dotted(settings.model_dump(exclude_none=True, exclude={"system"}))
