"""A real S3 HTTP endpoint for the object-store tests: moto's server mode (`python -m moto.server`) in its own
process on a free loopback port, with a secret access key made up per server. The tests reach it exactly as a lab
reaches its bucket: an `s3://` data root and the AWS_* environment variables (storage/location.py).

`server(read_only_bucket=...)` enforces IAM: after the set-up requests, only a user allowed s3:Get* and s3:List*
(on every bucket) is let in, so a write is refused with 403 AccessDenied, as on AWS."""
from __future__ import annotations

import dataclasses
import json
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
    key_id: str = "talkface-test"

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self, service: str = "s3"):
        """A boto3 client of `service` on this server."""
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, aws_access_key_id=self.key_id,
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


READ_ONLY = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}]}


@contextmanager
def server(read_only_bucket: str | None = None) -> Iterator[S3]:
    """moto in server mode until the block ends. With `read_only_bucket`: that bucket is created, and the server
    yielded carries the keys of an IAM user who may only read (moto enforces IAM after its first 4 requests)."""
    port = free_port()
    log = tempfile.TemporaryFile("w+")  # moto logs every request: a pipe nobody reads would fill and stall it
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"} if read_only_bucket else None
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
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
        s3 = S3(endpoint, secrets.token_urlsafe(18))
        if read_only_bucket:  # the 4 requests moto lets in before it enforces IAM
            s3.client().create_bucket(Bucket=read_only_bucket)
            iam = s3.client("iam")
            iam.create_user(UserName="reader")
            iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps(READ_ONLY))
            key = iam.create_access_key(UserName="reader")["AccessKey"]
            s3 = S3(endpoint, key["SecretAccessKey"], key["AccessKeyId"])
        yield s3
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
