"""The PostgreSQL profile's URLs (storage/database.py): what `talkface ui --database` accepts, refuses and hands to
each server. The servers on a real PostgreSQL are in tests/flows/test_postgres.py."""
from __future__ import annotations

import pytest

from storage import database as pg


def test_each_server_gets_its_database_and_driver_and_no_password():
    server = pg.server_url("postgresql://talkface@db.lab:5433/whatever")  # a database name is dropped
    assert pg.prefect_url(server) == "postgresql+asyncpg://talkface@db.lab:5433/talkface_prefect"
    assert pg.mlflow_url(server) == "postgresql+psycopg://talkface@db.lab:5433/talkface_mlflow"
    assert pg.server_url("postgresql+psycopg2://talkface@127.0.0.1").port is None  # libpq's default port


@pytest.mark.parametrize("url, message", [
    ("postgresql://talkface:s3cret@db.lab:5432", "put no password in the URL"),
    ("sqlite:///mlflow.db", "takes a postgresql:// URL, not sqlite://"),
    ("postgresql://db.lab:5432", "name the role and the host"),
    ("postgresql://talkface@/talkface", "name the role and the host"),
    ("not a url", "not a database URL"),
])
def test_refused_urls_say_why_and_never_show_a_password(url, message):
    with pytest.raises(ValueError, match=message) as refused:
        pg.server_url(url)
    assert "s3cret" not in str(refused.value)


def test_redacted_hides_the_password():
    assert pg.redacted("postgresql://talkface:s3cret@db.lab:5432/x") == "postgresql://talkface:***@db.lab:5432/x"


def test_a_password_file_others_can_read_is_refused_with_the_fix(tmp_path, monkeypatch):
    passfile = tmp_path / "pgpass"
    passfile.write_text("127.0.0.1:5432:*:talkface:s3cret\n")
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    passfile.chmod(0o644)
    with pytest.raises(ValueError, match=f"mode 644: libpq ignores .* chmod 600 {passfile}"):
        pg.check_password_file()
    passfile.chmod(0o600)
    pg.check_password_file()
