"""deploy/prefect.yaml declares the same deployments `talkface serve` serves, with entrypoints that import and
parameters that the flows' pydantic models accept."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import yaml

from flows.deployments import deployments

ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_matches_the_served_deployments(tmp_path):
    spec = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text())
    served = {d.name: d for d in deployments(data_root=tmp_path)}
    declared = {d["name"]: d for d in spec["deployments"]}
    assert set(declared) == set(served) == {"scheduled-build", "one-click"}
    env = {"TALKFACE_HOME": str(ROOT), "TALKFACE_DATA": str(tmp_path)}
    for name, d in declared.items():
        path, func = d["entrypoint"].split(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), func)
        assert served[name].entrypoint == f"{flow.__module__}.{func}"  # the same flow object
        params = yaml.safe_load(re.sub(r"\{\{ \$(\w+) \}\}", lambda m: env[m[1]], yaml.safe_dump(d["parameters"])))
        model = flow.fn.__annotations__["params"]
        model = getattr(importlib.import_module(flow.__module__), model) if isinstance(model, str) else model
        validated = model(**params["params"])
        assert validated.dataset == "grid" and Path(validated.raw_root).is_dir()
        assert d["work_pool"]["name"] in ("talkface-cpu", "talkface-gpu")
    assert [s["cron"] for s in declared["scheduled-build"]["schedules"]] == [served["scheduled-build"].schedules[0].schedule.cron]
    assert not declared["one-click"].get("schedules") and not served["one-click"].schedules
