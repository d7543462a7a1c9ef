"""Imports run one way (`../shared/specs/systems.md`): flows -> tasks/steps -> tasks -> models -> storage. Read from
the source with `ast` (every import, also those inside functions), so a new circle or shortcut fails here."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def offending(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    return sorted(n for n in imports(path) if n.split(".")[0] in prefixes or n.startswith(prefixes))


@pytest.mark.parametrize("path", modules("storage"), ids=lambda p: str(p.relative_to(ROOT)))
def test_storage_imports_no_upper_layer(path):
    # storage/ imports on the GPU machine too (models/ reads stores): no pydantic there either
    assert not offending(path, ("tasks", "flows", "models", "prefect", "pydantic"))


@pytest.mark.parametrize("path", modules("models"), ids=lambda p: str(p.relative_to(ROOT)))
def test_models_import_neither_tasks_nor_orchestration(path):
    # models/ imports on the GPU machine: no Prefect, MLflow or dlib, no pydantic
    assert not offending(path, ("tasks", "flows", "prefect", "mlflow", "dlib", "pydantic"))


@pytest.mark.parametrize("path", [p for p in modules("tasks") if "steps" not in p.parts],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_tasks_import_no_prefect_and_no_flows(path):
    assert not offending(path, ("flows", "prefect", "tasks.steps"))


@pytest.mark.parametrize("path", [p for p in modules("flows") if p.name != "cli.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_flows_never_import_the_cli(path):
    assert not offending(path, ("flows.cli",))


INFERENCE = ["models/weights.py", "models/atvgnet/generator.py", "models/atvgnet/inference.py", "tasks/generate.py",
             "tasks/evaluation.py", "tasks/model_dir.py", "tasks/sync.py", "tasks/landmark_eval.py"]
TRAINING = ("tasks.training", "tasks.launch", "tasks.rank", "models.atvgnet.stages", "models.atvgnet.losses",
            "models.atvgnet.discriminator", "models.syncnet.stages")


@pytest.mark.parametrize("name", INFERENCE)
def test_inference_never_imports_training_code(name):
    assert not offending(ROOT / name, TRAINING)
