"""Readers refuse incomplete stores (storage/store.py): a store whose build never finished has a manifest but no
card, and training, evaluation and the datasets say which build completes it, exit status 2, nothing written."""
from __future__ import annotations

import shutil

import pytest

from storage import store
from storage.dataset import ok_clips
from tests.conftest import SAMPLES, talkface


@pytest.fixture
def cardless_store(grid_store, tmp_path):
    """A copy of the bundled store as an interrupted build leaves it: shards, manifest and build.json, no card."""
    out = tmp_path / "data" / "stores" / "grid" / grid_store.name
    shutil.copytree(grid_store, out)
    (out / store.CARD).unlink()
    return out


def test_the_datasets_refuse_a_store_without_its_card(cardless_store):
    with pytest.raises(store.IncompleteStoreError, match="has no card.json: its build is still running or stopped"):
        ok_clips(cardless_store, "train")
    expected = (f"talkface build --dataset grid --raw-root {SAMPLES} --data-root {cardless_store.parents[2]} "
                "--shard-size 4")
    assert store.build_command(cardless_store) == expected


@pytest.mark.parametrize("command", [("train", "--system", "atvgnet", "--steps", "1"), ("evaluate",)])
def test_train_and_evaluate_refuse_a_store_without_its_card(cardless_store, tmp_path, command):
    data_root = tmp_path / "mlflow-root"
    result = talkface(*command, "--store", cardless_store, "--data-root", data_root)
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"{cardless_store} has no card.json" in result.stderr
    assert f"talkface build --dataset grid --raw-root {SAMPLES}" in result.stderr
    assert not data_root.exists()  # nothing written: no MLflow database, no run


def test_a_path_that_is_not_a_store_is_refused(tmp_path):
    with pytest.raises(store.IncompleteStoreError, match="does not exist"):
        store.require_complete(tmp_path / "stores" / "grid" / "0123456789abcdef")
    (tmp_path / "empty").mkdir()
    with pytest.raises(store.IncompleteStoreError, match="is not a store"):
        store.read_card(tmp_path / "empty")
