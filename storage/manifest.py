"""The store's manifest: one row per source clip, ok or quarantined (DESIGN, "The store").

`manifest.parquet` is written with the Arrow schema below. Per-shard parts (`shards/<shard>.zarr/manifest.parquet`)
use the same schema and are merged once, by the flow, into the store's `manifest.parquet`.
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from storage import location

WORD = pa.struct([("word", pa.string()), ("start_frame", pa.int32()), ("end_frame", pa.int32())])

SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),  # "<speaker>/<clip>" for GRID, unique in a store
        ("dataset", pa.string()),
        ("speaker", pa.string()),
        ("split", pa.string()),  # train | val | test
        ("source_path", pa.string()),  # relative to the raw root, POSIX separators
        ("source_sha256", pa.string()),
        ("status", pa.string()),  # ok | quarantined
        ("reason", pa.string()),  # "" when ok; a sentence a person can act on when quarantined
        ("shard", pa.string()),  # "shard-NNNNN" holding the clip's arrays; null when no arrays were written
        ("frame_start", pa.int64()),  # row offset in the shard's face/mouth/landmarks/transform arrays
        ("n_frames", pa.int64()),  # N video frames at 25 fps
        ("audio_start", pa.int64()),
        ("n_samples", pa.int64()),  # S samples at 16 kHz
        ("mfcc_start", pa.int64()),
        ("n_mfcc", pa.int64()),  # A MFCC frames at 100 Hz
        ("fps_source", pa.float64()),  # the source container's frame rate
        ("duration_s", pa.float64()),  # the source container's duration in seconds
        ("text", pa.string()),
        ("words", pa.list_(WORD)),  # start/end null when the words carry no timings
        ("words_timed", pa.bool_()),  # False when words come from the GRID file-name code, not an .align
        ("faces_missing", pa.int64()),  # frames whose landmarks were interpolated (no face found)
        ("landmarks_min", pa.float64()),  # min over the clip's crop-pixel landmark coordinates
        ("landmarks_max", pa.float64()),  # max over the same
        ("nan_count", pa.int64()),  # NaN count over the clip's float arrays
        ("crop_size", pa.int64()),  # side of the face crop in pixels
        # Head pose (tasks/head_pose.py): the largest |angle| in degrees over the clip's frames (7-frame running
        # median); null when the clip did not decode to tracked landmarks.
        ("head_yaw_deg", pa.float64()),
        ("head_pitch_deg", pa.float64()),
        ("head_roll_deg", pa.float64()),
        # Dataset extras (ClipSource.extras), null where a dataset has none, e.g. every GRID row.
        ("emotion", pa.string()),  # CREMA-D emotion code from the file name: ANG DIS FEA HAP NEU SAD
        ("intensity", pa.string()),  # CREMA-D intensity code: LO MD HI XX (unspecified)
        ("sex", pa.string()),  # CREMA-D actor sex from VideoDemographics.csv ("Male" | "Female")
        ("age", pa.int64()),  # CREMA-D actor age in years from VideoDemographics.csv
        ("word", pa.string()),  # LRW word (its folder name, e.g. "ABOUT")
    ]
)

COLUMNS = SCHEMA.names
EXTRAS = ("emotion", "intensity", "sex", "age", "word")  # nullable per-dataset columns
HEAD_POSE = ("head_yaw_deg", "head_pitch_deg", "head_roll_deg")  # in the order of tasks/head_pose.py's angles
OK, QUARANTINED = "ok", "quarantined"


def empty_row() -> dict:
    """A row with every column present and null, to be filled by the adapter and the preprocessor."""
    return {name: None for name in COLUMNS}


def to_table(rows: list[dict]) -> pa.Table:
    """Rows (dicts with the schema's keys) → an Arrow table with exactly `SCHEMA`. Raises KeyError on a missing key."""
    return pa.Table.from_pylist([{k: row[k] for k in COLUMNS} for row in rows], schema=SCHEMA)


def write(rows: list[dict] | pd.DataFrame, path: Path) -> None:
    """Write rows, sorted by clip_id, to a Parquet file at `path` (a local path or an object-store path), atomically
    (`location.write_bytes`: a rename, or one PUT)."""
    table = pa.Table.from_pandas(rows, schema=SCHEMA, preserve_index=False) if isinstance(rows, pd.DataFrame) else to_table(rows)
    buffer = io.BytesIO()
    pq.write_table(table.sort_by("clip_id"), buffer)
    location.write_bytes(location.as_path(path), buffer.getvalue())


def read(path: Path) -> pd.DataFrame:
    """Read a manifest written by `write` as a DataFrame: integer columns as pandas' nullable Int64 (null for
    quarantined clips without arrays), `words` as lists of dicts."""
    source = location.open_bytes(location.as_path(path))
    return pq.read_table(source, schema=SCHEMA).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
