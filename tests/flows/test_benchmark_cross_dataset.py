"""A cross-dataset benchmark as Zheng et al. 2020 run it, trained on LRW and tested on GRID: the real flow (real
Prefect, real MLflow under a temporary data root) trains ATVGnet at tiny steps on the store of the fixture LRW raw
root (`tests.conftest.lrw_raw`) and scores it on the bundled GRID clips' test split."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from flows.train_and_benchmark import BenchmarkParams, train_and_benchmark
from storage import store


def test_train_on_lrw_test_on_grid(lrw_raw, tmp_path):
    out = train_and_benchmark(BenchmarkParams(
        systems=["atvgnet"], dataset="lrw", raw_root=lrw_raw, test_dataset="grid", data_root=tmp_path / "data",
        preset="small", steps=2, overrides={"atvgnet.vgnet.batch_size": 2}, sync_steps=0, reader_steps=0))

    train_card, test_card = store.read_card(Path(out["store"])), store.read_card(Path(out["test_store"]))
    assert (train_card["dataset"], test_card["dataset"]) == ("lrw", "grid")
    assert train_card["version"] != test_card["version"]
    m = out["systems"]["atvgnet"]["metrics"]
    assert m["n_clips"] == 1 and m["n_frames"] == 75  # GRID's bundled test clip s2/swwp2s, not an LRW one
    assert out["sync_model"] is None and out["reader_model"] is None

    summary = out["summary"]
    assert summary.startswith(f"# Trained on lrw (store `{train_card['version']}`), tested on grid (store "
                              f"`{test_card['version']}`) — a cross-dataset benchmark")
    assert "no SyncNet (sync_steps 0: AV offset and confidence not scored)" in summary
    assert "no lip reader (reader_steps 0: WER not scored)" in summary
    assert "| 32.15 |" in summary  # the published GRID numbers (ATVGnet's PSNR), looked up for the test dataset

    client = MlflowClient(out["tracking_uri"])
    parent = client.get_run(out["run_id"])
    assert parent.info.status == "FINISHED" and parent.info.run_name == "benchmark-atvgnet-lrw-to-grid"
    assert parent.data.tags["dataset"] == "lrw" and parent.data.tags["test_dataset"] == "grid"
    assert parent.data.params["test_store_version"] == test_card["version"]
    assert parent.data.metrics["test/grid/atvgnet/lmd"] == m["lmd"]
    assert not any(k.startswith("test/lrw/") for k in parent.data.metrics)
    inputs = {i.tags[0].value: i.dataset.name for i in parent.inputs.dataset_inputs}
    assert inputs == {"train": f"lrw-{train_card['version']}", "test": f"grid-{test_card['version']}"}
    nested = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{out['run_id']}'")
    assert [r.info.run_name for r in nested] == ["atvgnet"]  # no expert trained (sync_steps, reader_steps 0)
    under = {r.info.run_name: r for r in client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{nested[0].info.run_id}'")}
    assert set(under) == {"atvgnet-lrw", "evaluate-grid"}  # trained on LRW, evaluated on GRID
    assert under["atvgnet-lrw"].data.params["store_version"] == train_card["version"]


def test_a_test_dataset_other_than_grid_needs_its_raw_root():
    with pytest.raises(ValueError, match="test_dataset lrw needs test_raw_root: the bundled clips are GRID's"):
        BenchmarkParams(test_dataset="lrw")
    with pytest.raises(ValueError, match="give test_dataset too"):
        BenchmarkParams(test_raw_root=Path("raw"))
    assert BenchmarkParams(dataset="lrw", raw_root=Path("raw"), test_dataset="grid").tested_on == "grid"


def test_the_cli_names_the_missing_test_raw_root(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["benchmark", "--data-root", str(tmp_path / "data"), "--dataset", "grid",
                                      "--test-dataset", "tcd_timit"])
    assert result.exit_code == 2 and "--test-dataset tcd_timit needs --test-raw-root" in result.stderr
    assert not (tmp_path / "data").exists()
