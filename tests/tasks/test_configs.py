"""Stage configs from user input (`tasks.configs`): the typed settings form generated from each stage's config
dataclass, its field descriptions read from the docstrings, and a filled-in form turned into the same dotted
overrides `--set` gives."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.atvgnet.stages import ATNetTrainConfig, VGNetTrainConfig
from models.config import TrainConfig
from models.registry import SYSTEMS, get_system
from tasks.configs import field_docs, settings_model, settings_overrides, system_configs, system_settings_model


def test_field_docs_read_the_docstring_convention():
    docs = field_docs(TrainConfig)
    assert docs["steps"].startswith("total optimizer steps")
    assert "OpenMP threads spinning" in docs["cpu_threads"]  # a continuation line joins its field
    atnet = field_docs(ATNetTrainConfig)
    assert atnet["lr"] == atnet["beta2"] == "Adam (2e-4, 0.5, 0.999 as in the paper)."  # "lr, beta1, beta2: …"


def test_settings_model_mirrors_the_config_with_every_field_optional():
    model = settings_model(VGNetTrainConfig)
    empty = model()
    assert all(v is None for v in empty.model_dump().values())
    schema = model.model_json_schema()
    assert set(schema["properties"]) >= {"lr", "batch_size", "generator", "loss"}
    nested = schema["$defs"][schema["properties"]["generator"]["anyOf"][0]["$ref"].split("/")[-1]]
    assert "use_dma" in nested["properties"] and "use_mmcrnn" in nested["properties"]
    with pytest.raises(ValidationError, match="learning_rate"):
        model(learning_rate=1)
    with pytest.raises(ValidationError, match="lr"):
        model(lr="fast")


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_every_system_has_a_settings_form(name):
    form = system_settings_model(get_system(name))
    assert set(form.model_fields) == {"system", *get_system(name).stage_names}
    assert settings_overrides(form(system=name)) == {}


def test_a_filled_in_form_gives_the_overrides_set_gives():
    form = system_settings_model(get_system("atvgnet"))
    filled = form(system="atvgnet", atnet={"lr": 1e-3}, vgnet={"generator": {"use_dma": False}, "batch_size": 2})
    overrides = settings_overrides(filled)
    assert overrides == {"atnet.lr": 1e-3, "vgnet.generator.use_dma": False, "vgnet.batch_size": 2}
    configs = system_configs(get_system("atvgnet"), ["atnet", "vgnet"], "small", overrides)
    assert configs["atnet"].lr == 1e-3 and not configs["vgnet"].generator.use_dma and configs["vgnet"].batch_size == 2
    assert configs["vgnet"].generator.use_mmcrnn  # untouched fields keep the preset's values
