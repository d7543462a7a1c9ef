"""Build throughput to S3 against a local data root: the same clips, one run each (issue 16, "Measured").

    make benchmark-s3        # or: .venv/bin/python benchmarks/build_s3.py [--raw-root RAW] [--clips 24]

The S3 endpoint is moto's server on loopback (tests/s3.py), a single Python process, so the S3 figures are a floor
for a real object store, not its speed. Three measurements, each local then S3:
- the whole build (`build_dataset`, one worker, shards of 4 clips): clips/s and seconds, preprocessing included;
- the store part alone: every shard of that store written again from its arrays (`shards.write_shard`: zarr v3
  through the sharding codec, the manifest part, the marker, and on S3 the index object), then verified; stored
  MB/s;
- training's reads: every ok clip's face crops and MFCC read back through `storage.dataset.ClipReader`; frames/s.
Prints a markdown table; the last line is `RESULT {json}`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import s3  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "samples" / "grid"
BUNDLED = ROOT / "samples" / "grid"
RESULT = "RESULT "


def raw_subset(raw_root: Path, clips: int, out: Path) -> int:
    """Copy the first `clips` s1 clips (sorted) and their alignments into `out` (GRID's layout); returns how many."""
    names = sorted(p.stem for p in (raw_root / "s1").glob("*.mpg"))[:clips]
    for name in names:
        (out / "s1").mkdir(parents=True, exist_ok=True)
        (out / "alignments" / "s1").mkdir(parents=True, exist_ok=True)
        shutil.copy(raw_root / "s1" / f"{name}.mpg", out / "s1")
        align = raw_root / "alignments" / "s1" / f"{name}.align"
        if align.exists():
            shutil.copy(align, out / "alignments" / "s1")
    return len(names)


def time_build(raw: Path, data_root: str) -> tuple[str, float]:
    from flows.build_dataset import BuildParams, build_dataset

    started = time.perf_counter()
    out = build_dataset(BuildParams(raw_root=raw, data_root=data_root, workers=1, shard_size=4))
    return out, time.perf_counter() - started


def time_writes(source: str, data_root: str) -> tuple[float, int]:
    """(seconds, stored bytes) to write every shard of the store `source` again under `data_root` and verify it."""
    import pyarrow.parquet as pq

    from storage import location, shards

    names = shards.completed(source)
    parts = []
    for name in names:  # read first, so only the writes are timed
        group, folder = shards.open_shard(source, name), shards.shard_path(source, name)
        rows = pq.read_table(location.open_bytes(folder / shards.PART_MANIFEST)).to_pylist()
        parts.append((name, {f: group[f][:] for f in group.array_keys()}, rows))
    target = location.as_path(data_root) / "stores" / "grid" / "rewritten"
    started, stored = time.perf_counter(), 0
    for name, arrays, rows in parts:
        folder = shards.write_shard(target, name, arrays, rows)
        if shards.verify(target, name) is not None:
            raise RuntimeError(f"{name} failed verification after its write")
        stored += sum(shards._file_sizes(folder).values())
    return time.perf_counter() - started, stored


def time_reads(store_dir: str) -> tuple[float, int]:
    """(seconds, frames) to read every ok clip's face crops and MFCC through ClipReader, in a fresh reader."""
    from storage.dataset import ClipReader
    from storage import manifest, store

    rows = manifest.read(store.require_complete(store_dir) / store.MANIFEST)
    rows = rows[rows.status == manifest.OK]
    reader, started = ClipReader(store_dir), time.perf_counter()
    for row in rows.itertuples():
        reader.faces(row)
        reader.mfcc(row)
    return time.perf_counter() - started, int(rows.n_frames.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-root", type=Path, default=SHARED if SHARED.exists() else BUNDLED)
    parser.add_argument("--clips", type=int, default=24)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="talkface-bench-prefect-"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.embedded import start_temporary_prefect

    start_temporary_prefect()
    results = {}
    with tempfile.TemporaryDirectory(prefix="talkface-bench-s3-") as tmp, s3.server() as server:
        os.environ.update(server.env)
        os.environ["TALKFACE_WORK_ROOT"] = str(Path(tmp) / "work")
        raw = Path(tmp) / "raw"
        n = raw_subset(args.raw_root, args.clips, raw)
        roots = {"local": str(Path(tmp) / "data"), "s3": f"{server.bucket('bench')}/data"}
        for where, root in roots.items():
            out, build_s = time_build(raw, root)
            write_s, stored = time_writes(out, root)
            read_s, frames = time_reads(out)
            results[where] = {"store": out, "build_s": round(build_s, 2), "clips_per_s": round(n / build_s, 3),
                              "write_s": round(write_s, 3), "stored_mb": round(stored / 1e6, 2),
                              "write_mb_per_s": round(stored / 1e6 / write_s, 2),
                              "read_frames_per_s": round(frames / read_s, 1), "frames": frames}
            print(f"{where}: {results[where]}", flush=True)
    local, remote = results["local"], results["s3"]
    assert Path(local["store"]).name == remote["store"].rsplit("/", 1)[1], "the two builds made different versions"
    print(f"\n{n} GRID clips from {args.raw_root}, shards of 4 clips, one worker; S3 = moto on loopback\n")
    print("| data root | whole build, s | clips/s | shard writes + verify, s | stored MB | MB/s | training reads, "
          "frames/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for where, r in results.items():
        print(f"| {where} | {r['build_s']} | {r['clips_per_s']} | {r['write_s']} | {r['stored_mb']} | "
              f"{r['write_mb_per_s']} | {r['read_frames_per_s']} |")
    print(f"\nS3 / local: whole build {remote['build_s'] / local['build_s']:.2f}× the time, shard writes "
          f"{remote['write_s'] / local['write_s']:.1f}×, reads {local['read_frames_per_s'] / remote['read_frames_per_s']:.1f}×")
    print(RESULT + json.dumps({"clips": n, **results}))


if __name__ == "__main__":
    main()
