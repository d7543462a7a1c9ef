"""MLflow helpers against a real SQLite tracking store in a temporary data root (no server)."""
import mlflow
import pytest

from storage.tracking import (artifact_location, download_model, ensure_experiment, log_params, open_run,
                              register_model, tracking_uri)


def test_tracking_uri_is_absolute_sqlite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tracking_uri("data") == f"sqlite:///{tmp_path.resolve()}/data/mlflow.db"
    assert tracking_uri(tmp_path).startswith("sqlite:////")


def test_ensure_experiment_creates_once_and_logs(tmp_path):
    root = tmp_path / "root"
    exp_id = ensure_experiment("talkface-test", root)
    assert ensure_experiment("talkface-test", root) == exp_id
    client = mlflow.MlflowClient(tracking_uri(root))
    assert client.get_experiment(exp_id).artifact_location == artifact_location(root)
    run = client.create_run(exp_id)
    client.log_metric(run.info.run_id, "loss", 0.5, step=1)
    client.log_text(run.info.run_id, "hello", "note.txt")
    assert (root / "mlflow.db").exists()
    assert list((root / "mlartifacts").rglob("note.txt"))
    client.delete_experiment(exp_id)
    assert ensure_experiment("talkface-test", root) == exp_id
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_the_experiment_opens_in_mlflows_model_training_view(tmp_path):
    """MLflow 3's UI shows an experiment without `mlflow.experimentKind` in its GenAI view (traces, prompts)."""
    root = tmp_path / "root"
    client = mlflow.MlflowClient(tracking_uri(root))
    exp_id = ensure_experiment("talkface-test", root)
    assert client.get_experiment(exp_id).tags["mlflow.experimentKind"] == "custom_model_development"
    old = client.create_experiment("made-before", artifact_location=artifact_location(root))  # untagged
    assert ensure_experiment("made-before", root) == old
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"


def test_log_params_keeps_the_first_value_and_tags_a_changed_one(tmp_path):
    uri, run_id, _ = open_run(tmp_path, "talkface-test", None, "params", {})
    client = mlflow.MlflowClient(uri)
    log_params(client, run_id, {f"p{i:03d}": i for i in range(150)})  # more than one MLflow batch
    log_params(client, run_id, {"p000": 0, "p001": 99, "new": "x"})  # a resumed run: one changed, one new
    run = client.get_run(run_id)
    assert len(run.data.params) == 151 and run.data.params["p001"] == "1" and run.data.params["new"] == "x"
    assert run.data.tags["resume.p001"] == "99" and "resume.p000" not in run.data.tags


def test_register_and_download_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's global default would put a stray ./mlflow.db here
    uri, run_id, _ = open_run(tmp_path / "data", "talkface-test", None, "model", {})
    client = mlflow.MlflowClient(uri)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.pt").write_bytes(b"w")
    client.log_artifacts(run_id, str(tmp_path / "model"), "model")
    assert register_model(client, "m", run_id, "model", "champion") == "1"
    assert register_model(client, "m", run_id, "model", "champion") == "2"
    for uri_, dst in (("models:/m@champion", "a"), ("models:/m/1", "b"), (f"runs:/{run_id}/model", "c")):
        assert (download_model(uri_, tmp_path / "data", tmp_path / dst) / "weights.pt").read_bytes() == b"w"
    assert download_model(str(tmp_path / "model"), tmp_path / "data", tmp_path / "d") == tmp_path / "model"
    assert client.get_model_version_by_alias("m", "champion").version in (2, "2")
    for bad, message in (("models:/m@nope", "alias nope"), ("models:/m/7", "not found"), ("models:/m", "give models:/"),
                         ("no/such/dir", "no such directory")):
        with pytest.raises(FileNotFoundError, match=message):
            download_model(bad, tmp_path / "data", tmp_path / "e")
    with pytest.raises(FileNotFoundError, match="no MLflow store"):
        download_model("models:/m@champion", tmp_path / "elsewhere", tmp_path / "f")
    assert not list(tmp_path.glob("*.db"))  # nothing written to the working directory


def test_an_experiment_whose_artifacts_live_elsewhere_is_reported(tmp_path, caplog, monkeypatch):
    """MLflow fixes an experiment's artifact location when it is made: a data root moved to a bucket keeps logging
    to the old location, and the log says so."""
    monkeypatch.setenv("TALKFACE_WORK_ROOT", str(tmp_path / "work"))
    first, second = tmp_path / "first", "s3://lab/moved"
    exp_id = ensure_experiment("talkface-test", first)
    with caplog.at_level("WARNING", logger="storage.tracking"):
        assert ensure_experiment("talkface-test", second, uri=tracking_uri(first)) == exp_id
    assert f"keeps its artifacts in {artifact_location(first)}, not in this data root's s3://lab/moved/mlartifacts" \
        in caplog.text
