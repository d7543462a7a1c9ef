"""MLflow helpers against a real SQLite tracking store in a temporary data root (no server)."""
import mlflow

from storage.tracking import artifact_location, ensure_experiment, tracking_uri


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
