"""A real S3 HTTP endpoint for the object-store tests: moto's server mode (`python -m moto.server`) in its own
process on a free loopback port, with a secret access key made up per server. The tests reach it exactly as a lab
reaches its bucket: an `s3://` data root and the AWS_* environment variables (storage/location.py)."""
from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from typing import Iterator

import pytest

from tests.servers import free_port


@dataclasses.dataclass(frozen=True)
class S3:
    """A running moto server; `env` is what a talkface command needs to reach it (no secret in any URL)."""
    endpoint: str
    secret: str

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "talkface-test",
                "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):
        """A boto3 S3 client on this server."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="talkface-test",
                            aws_secret_access_key=self.secret, region_name="us-east-1")

    def bucket(self, name: str) -> str:
        """Create bucket `name` (if missing); returns `s3://name`."""
        client = self.client()
        if name not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=name)
        return f"s3://{name}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@contextmanager
def server() -> Iterator[S3]:
    """moto in server mode until the block ends."""
    port = free_port()
    log = tempfile.TemporaryFile("w+")  # moto logs every request: a pipe nobody reads would fill and stall it
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"moto's server exited with {proc.returncode}: {log.read()[-4000:]}")
                if time.monotonic() > deadline:
                    pytest.fail("moto's server did not answer within 60 s")
                time.sleep(0.3)
        yield S3(endpoint, secrets.token_urlsafe(18))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def environment(s3: S3) -> Iterator[None]:
    """This process's AWS_* variables pointed at `s3` for the block (s3fs and boto3 read them)."""
    saved = {k: os.environ.get(k) for k in s3.env}
    os.environ.update(s3.env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
