"""Where a data root lives: a local folder or an object store reached through fsspec (`s3://bucket/prefix`, any
fsspec URL), and the few file operations whose meaning differs between them (deploy/README.md "Stores on S3").

A local root is a `pathlib.Path`; a URL becomes a `upath.UPath` (universal-pathlib), which has the same path API
over fsspec, so the store code is one code for both. What differs is atomicity. A local file appears whole by a
rename (`os.replace`). An object store has no rename, but a single PUT is atomic: readers see the old object or the
new one, never part of one (AWS S3 User Guide, "Amazon S3 data consistency model"). And an object can be created
only if absent (`If-None-Match: *`, a conditional write; AWS S3 User Guide, "Conditional writes"), which is what
`publish` uses to name a finished shard and `storage.locks` to take a lock.

Credentials never travel in a URL or a flow parameter: s3fs reads them the way botocore does, from
`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (or `AWS_PROFILE`) in the environment or the shared credentials file
(`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`), which must have mode 600. `AWS_ENDPOINT_URL` names a
non-AWS endpoint (MinIO, Ceph, moto).
"""
from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

# s3fs caches directory listings per process; another process's writes would then be missed (a waiting build that
# looks for the card of a store another build completed, a shard another writer published)
STORAGE_OPTIONS = {"use_listings_cache": False}
WORK_ROOT_ENV = "TALKFACE_WORK_ROOT"


def is_url(location: str | os.PathLike) -> bool:
    """True for an fsspec URL (`scheme://…` other than file://), False for a local path."""
    if is_remote(location):
        return True
    if isinstance(location, Path):
        return False
    scheme = urlsplit(str(location)).scheme
    return len(scheme) > 1 and scheme != "file" and "://" in str(location)


def is_remote(path) -> bool:
    """True for a path on an object store (a UPath of a non-local protocol)."""
    return getattr(path, "protocol", "") not in ("", "file", "local")


def redacted(location: str) -> str:
    """`location` without any user or password part, for messages."""
    parts = urlsplit(str(location))
    if parts.username or parts.password:
        return parts._replace(netloc=parts.hostname or "").geturl()
    return str(location)


def normalise(location: str | os.PathLike) -> str:
    """A data root or store as a flow parameter: an fsspec URL unchanged (without a trailing /), a local path made
    absolute. Raises ValueError for a URL that carries credentials (`s3://KEY:SECRET@bucket`)."""
    text = os.fspath(location) if not is_remote(location) else str(location)
    if not is_url(text):
        return str(Path(text).expanduser().resolve())
    parts = urlsplit(text)
    if parts.username or parts.password:
        raise ValueError(f"{redacted(text)}: put no credentials in the URL (they would show in flow parameters and "
                         "logs); export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use ~/.aws/credentials "
                         "with mode 600")
    return text.rstrip("/")


def as_path(location: str | os.PathLike) -> Path:
    """The path object of a location: `pathlib.Path` for a local one, `upath.UPath` for a URL (listings not cached,
    see STORAGE_OPTIONS). A path object is returned as it is."""
    if isinstance(location, Path) or is_remote(location):
        return location
    text = os.fspath(location)
    if not is_url(text):
        return Path(text)
    from upath import UPath

    return UPath(normalise(text), **STORAGE_OPTIONS)


def check_credentials_file() -> None:
    """Raises ValueError when the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials)
    exists and others may read it."""
    path = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ValueError(f"{path} has mode {stat.S_IMODE(path.stat().st_mode):o}: others can read the bucket's "
                         f"credentials; run chmod 600 {path}")


def check_reachable(root: Path) -> None:
    """For an object-store root: the credentials file is private and the bucket answers a listing. Raises
    ValueError (an open credentials file), ConnectionError naming the URL and the cause (endpoint down, bucket
    missing, access refused). A local root needs no check."""
    if not is_remote(root):
        return
    check_credentials_file()
    bucket = str(root).split("://", 1)[1].split("/", 1)[0]
    try:
        root.fs.ls(bucket, refresh=True)
    except Exception as error:  # botocore / aiohttp raise many kinds; each is the same problem for the user
        cause = " ".join(str(error).split()) or type(error).__name__
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
        raise ConnectionError(f"cannot reach data root {redacted(str(root))}"
                              + (f" at {endpoint}" if endpoint else "") + f": {cause}") from None


@contextmanager
def writing(path) -> Iterator[None]:
    """Re-raise a refused write (PermissionError: S3's 403 AccessDenied through s3fs) naming the key it tried."""
    try:
        yield
    except PermissionError as error:
        cause = " ".join(str(error).split()) or "access denied"
        hint = " (the data root's credentials need s3:PutObject and s3:DeleteObject on it)" if is_remote(path) else ""
        raise PermissionError(f"no permission to write {redacted(str(path))}: {cause}{hint}") from None


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old content or the new, never part: a local file through a
    temporary file beside it and a rename; an object by one PUT. Creates a local file's folder. Raises
    PermissionError naming `path` when the store refuses the write."""
    if is_remote(path):
        with writing(path):
            path.fs.pipe_file(path.path, data)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def publish(path: Path, data: bytes) -> bool:
    """Create `path` with `data` only if nothing is there: True when this call created it, False when it existed.
    Local: a temporary file beside it, then `os.link` to the name (which fails if the name exists); object store:
    a conditional PUT (`If-None-Match: *`), which the store refuses with 412 when the key exists. Raises
    PermissionError naming `path` when the store refuses the write."""
    if is_remote(path):
        try:
            with writing(path):
                path.fs.pipe_file(path.path, data, mode="create")
        except FileExistsError:  # s3fs's translation of 412 Precondition Failed
            return False
        return True
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def remove_tree(path: Path) -> None:
    """Remove a folder (every key under a prefix) if it is there."""
    if is_remote(path):
        if path.fs.exists(path.path):
            path.fs.rm(path.path, recursive=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def open_bytes(path: Path) -> io.BytesIO:
    """The whole file as an in-memory binary file (for readers that want a seekable file: np.load, pyarrow)."""
    return io.BytesIO(path.read_bytes())


@contextmanager
def local_folder(path: Path) -> Iterator[Path]:
    """A local folder standing for `path` during the block: `path` itself when local; else a temporary folder
    whose content is uploaded to `path` when the block ends without an error (for writers that need a file
    system, such as Great Expectations' Data Docs)."""
    if not is_remote(path):
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="talkface-") as tmp:
        yield Path(tmp)
        remove_tree(path)
        path.fs.put(f"{tmp}/", path.path, recursive=True)


def work_root(data_root: Path) -> Path:
    """The local folder for what a command keeps on its own machine: `mlflow.db` of the embedded default, a
    training run's checkpoints and an evaluation's renders (`runs/<run id>/`). The data root itself when it is
    local; for an object-store root, $TALKFACE_WORK_ROOT or `~/.cache/talkface/<bucket>/<prefix>`."""
    if not is_remote(data_root):
        return Path(data_root)
    if os.environ.get(WORK_ROOT_ENV):
        return Path(os.environ[WORK_ROOT_ENV]).expanduser().resolve()
    return Path.home() / ".cache" / "talkface" / str(data_root).split("://", 1)[1].strip("/")
