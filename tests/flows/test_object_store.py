"""`talkface build --data-root s3://…` against moto's S3 server (tests/s3.py), as a lab runs it: a Dask build with
two workers and no shared directory writes the store a local build writes; an unreachable bucket, credentials in
the URL and a bucket the credentials may only read are refused with the URL or key and the cause; a build killed
mid-way resumes, keeping the shards it had published."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import location, locks, shards, store
from tests.conftest import SAMPLES, assert_same_store, talkface


def test_a_dask_build_with_two_workers_on_s3_writes_the_store_a_local_build_writes_and_trains(grid_store, s3_env,
                                                                                             tmp_path):
    root = f"{s3_env.bucket('lab')}/dask"
    out = talkface("build", "--raw-root", SAMPLES, "--data-root", root, "--shard-size", 4, "--runner", "dask",
                   "--workers", 2, cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    built = out.stdout.strip().splitlines()[-1]
    assert built == f"{root}/stores/grid/{grid_store.name}"  # the same store version as the local build's
    s3_store = location.as_path(built)
    assert_same_store(grid_store, s3_store)  # the same manifest, shards and arrays
    assert store.read_card(s3_store)["counts"] == store.read_card(grid_store)["counts"]
    assert list(tmp_path.iterdir()) == []  # nothing written to a local directory: the workers share only the bucket
    keys = s3_env.keys("lab", "dask/")
    assert [k.rsplit("/", 1)[1] for k in keys if "/shards/" in k and k.endswith(".json") and ".zarr/" not in k] \
        == [f"shard-{i:05d}.json" for i in range(4)]  # published by their indexes
    assert not [k for k in keys if "/locks/" in k]  # every lock released
    card = store.read_card(s3_store)
    assert f"dask/stores/grid/{grid_store.name}/{card['validation']['data_docs']}" in keys  # GE's Data Docs, uploaded
    assert f"dask/stores/grid/{grid_store.name}/montage.png" in keys and f"dask/stores/grid/{grid_store.name}/pca.npz" \
        in keys

    # training reads the shards from the bucket; without a server, mlflow.db is in the work root, artifacts in S3
    trained = talkface("train", "--system", "atvgnet", "--store", built, "--data-root", root, "--preset", "small",
                       "--steps", 2, "--set", "vgnet.batch_size=2", cwd=tmp_path, timeout=900)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-5000:]
    assert "models:/atvgnet@champion" in trained.stdout
    assert (location.work_root(location.as_path(root)) / "mlflow.db").is_file()
    assert [k for k in s3_env.keys("lab", "dask/mlartifacts/") if "/artifacts/model/" in k]
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_bucket_or_credentials_in_the_url_stop_the_build_before_any_work(s3_env, tmp_path):
    missing = talkface("build", "--raw-root", SAMPLES, "--data-root", "s3://no-such-bucket/lab", timeout=300)
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert f"cannot reach data root s3://no-such-bucket/lab at {s3_env.endpoint}: " in missing.stderr
    assert "bucket" in missing.stderr.split(": ", 1)[1].lower()  # the cause, from the store
    assert "Flow run" not in missing.stdout + missing.stderr  # refused before the flow started
    secret = "Wrongly-Pasted-Secret-9"
    in_url = talkface("build", "--raw-root", SAMPLES, "--data-root", f"s3://AKIAEXAMPLE:{secret}@lab/p", timeout=300)
    assert in_url.returncode == 2 and "put no credentials in the URL" in in_url.stdout + in_url.stderr
    assert secret not in in_url.stdout + in_url.stderr


def test_a_bucket_the_credentials_may_only_read_fails_the_build_at_its_first_write_with_the_key(tmp_path):
    from tests import s3

    with s3.server(read_only_bucket="read-only-lab") as reader:
        env = {**os.environ, **reader.env}
        out = talkface("build", "--raw-root", SAMPLES, "--data-root", "s3://read-only-lab/p", env=env, timeout=600)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-3000:]
    assert "error: no permission to write s3://read-only-lab/p/stores/grid/" in out.stderr
    assert "/locks/build.lock: Access Denied" in out.stderr  # the build's first write, before any shard
    assert reader.secret not in out.stdout + out.stderr


def test_an_interrupted_build_on_s3_resumes_and_keeps_the_published_shards(s3_env, tmp_path):
    root = f"{s3_env.bucket('lab')}/resume"
    env = {**os.environ, locks.LEASE_ENV: "4"}  # the killed build's locks lapse 4 s after it stops renewing them
    args = [str(Path(sys.executable).with_name("talkface")), "build", "--raw-root", str(SAMPLES),
            "--data-root", root, "--shard-size", "2"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.monotonic() + 600
    while len(_indexes(s3_env)) < 2:
        assert first.poll() is None, "the build ended before it was interrupted"
        assert time.monotonic() < deadline, "no shard published within 600 s"
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = {k: s3_env.client().get_object(Bucket="lab", Key=k)["Body"].read() for k in _indexes(s3_env)}
    assert 2 <= len(before) < 7

    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-5000:]
    log = second.stdout + second.stderr
    assert "took over" in log and "which stopped renewing it" in log  # the killed build's lock
    assert f"resuming: {len(before)} of 7 shards already complete" in log
    s3_store = location.as_path(second.stdout.strip().splitlines()[-1])
    assert store.is_complete(s3_store) and shards.completed(s3_store) == [f"shard-{i:05d}" for i in range(7)]
    for key, index in before.items():  # the shards published before the kill were kept, not rebuilt
        assert s3_env.client().get_object(Bucket="lab", Key=key)["Body"].read() == index
    indexed = {location.as_path(f"s3://lab/{k}").read_text() for k in _indexes(s3_env)}
    folders = {k.split("/shards/", 1)[1].split("/", 1)[0] for k in s3_env.keys("lab", "resume/")
               if ".zarr/" in k}
    assert len(folders) == 7 and all(any(f in text for text in indexed) for f in folders)  # no dead writer's keys


def _indexes(s3_env) -> list[str]:
    return [k for k in s3_env.keys("lab", "resume/") if "/shards/shard-" in k and k.endswith(".json")
            and ".zarr/" not in k]


@pytest.fixture(autouse=True)
def _work_root(tmp_path, monkeypatch):
    """The commands' local work root (mlflow.db, run outputs) in the test's directory, not ~/.cache."""
    monkeypatch.setenv(location.WORK_ROOT_ENV, str(tmp_path.parent / f"{tmp_path.name}-work"))
