"""Validation of a store's per-clip manifest with Great Expectations (DESIGN, "The store", "Preprocessing").

A pure step: no Prefect here; the build flow wraps `validate_clips` in a thin task and marks the clip ids it
returns as quarantined with the returned reasons.

What is checked, on the rows with ``status == "ok"`` only (quarantined rows already failed earlier and carry their
own reason), with one expectation suite (`SUITE_NAME`) over the per-clip table:

==========================  ========================================================================================
check (meta ``check``)      rule (helper columns are computed here, in a copy, before the table goes to GE)
==========================  ========================================================================================
``<column>_present``        clip_id, dataset, speaker, split, n_frames, n_samples, n_mfcc, duration_s,
                            landmarks_min, landmarks_max, nan_count, crop_size, text are not null
``clip_id_unique``          no clip_id appears twice among the ok rows
``split_known``             split is one of train, val, test
``speaker_in_one_split``    ``splits_of_speaker`` (distinct splits of the (dataset, speaker) over the ok rows)
                            == 1: splits are speaker-disjoint; every clip of a speaker found in two splits fails
``frames_match_duration``   ``frames_vs_duration`` = n_frames − duration_s·fps, within [−1, 1]
``audio_matches_video``     ``audio_minus_video_frames`` = n_samples / (sample_rate / fps) − n_frames, in [−1, 1]
                            (one 25 fps frame = 640 samples at 16 kHz)
``mfcc_matches_audio``      ``mfcc_minus_expected`` = n_mfcc − (1 + ceil((n_samples − win) / hop)), in [−1, 1];
                            win 25 ms, hop 10 ms (400 and 160 samples at 16 kHz), python_speech_features' framing,
                            1 frame when n_samples ≤ win
``landmarks_min_in_crop``   landmarks_min ≥ 0
``landmarks_max_in_crop``   ``landmarks_over_crop`` = landmarks_max − crop_size ≤ 0
``no_nan``                  nan_count == 0
``text_not_empty``          ``text_chars`` (characters after stripping; null text is left to ``text_present``) ≥ 1
``words_present``           ``n_words`` (length of the words list, 0 when null) ≥ 1
==========================  ========================================================================================

With a `DatasetProfile` (tasks/datasets: one per dataset, since frame rates, durations and label vocabularies
differ), the suite is ``talkface_clips_<dataset>`` and adds, after the checks above:

==========================  ========================================================================================
``dataset_is_<name>``       dataset is the profile's name
``<column>_in_range``       for each profile range: the column (fps_source, duration_s, n_frames, n_words, age)
                            is within [min, max]
``<column>_known``          for each profile value set (e.g. CREMA-D emotion): not null and one of the values
``words_in_vocabulary``     ``unknown_words`` (word labels outside the profile's vocabulary) == 0
``text_known``              text is one of the profile's texts (CREMA-D's 12 sentences)
==========================  ========================================================================================

GE writes its files under the store's ``validation/`` folder: a file Data Context rooted there, i.e.
``validation/gx/great_expectations.yml``, the suite, validation definition and checkpoint, the validation results
as JSON in ``validation/gx/uncommitted/validations/`` and the Data Docs site at
``validation/gx/uncommitted/data_docs/local_site/index.html`` (one page per run, the index lists them all).
Re-running on the same folder updates the suite and adds a run.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from tasks.datasets.base import DatasetProfile

SUITE_NAME = "talkface_clips"
SPLITS = ("train", "val", "test")

# Columns of the manifest (storage/manifest.py) that the checks read.
REQUIRED_COLUMNS = (
    "clip_id", "dataset", "speaker", "split", "status", "n_frames", "n_samples", "n_mfcc", "duration_s",
    "text", "words", "landmarks_min", "landmarks_max", "nan_count", "crop_size", "fps_source",
)
_NUMERIC = ("n_frames", "n_samples", "n_mfcc", "duration_s", "landmarks_min", "landmarks_max", "nan_count", "crop_size")
_NOT_NULL = ("clip_id", "dataset", "speaker", "split") + _NUMERIC + ("text",)
# Columns handed to GE: identity and context first (they show in the Data Docs), then inputs, then helpers.
_HELPERS = (
    "splits_of_speaker", "frames_vs_duration", "audio_minus_video_frames", "mfcc_minus_expected",
    "landmarks_over_crop", "text_chars", "n_words",
)
_GX_COLUMNS = ("clip_id", "dataset", "speaker", "split") + _NUMERIC + ("text",) + _HELPERS

_DATASOURCE, _ASSET, _BATCH_DEFINITION = "manifest", "ok_clips", "whole_table"


@dataclass(frozen=True)
class ValidationReport:
    """What `validate_clips` found.

    suite: the expectation suite's name (``talkface_clips`` or ``talkface_clips_<dataset>``).
    success: True when every expectation passed (also with zero ok rows).
    n_validated: ok rows handed to GE.
    n_expectations: expectations evaluated (the suite's size; the same with zero rows).
    failures: failing clip_id → reason, several reasons for one clip joined with "; ", each starting with
        "validation: ". The caller quarantines these clips with these reasons.
    failed_expectations: the failed checks' names (the ``check`` key in each expectation's meta), suite order.
    data_docs_index: the Data Docs ``index.html``, ``validation_dir/gx/uncommitted/data_docs/local_site/index.html``
        (anchored on `validation_dir` as passed, so a relative folder gives a relative path).
    results_dir: where GE stores the validation results (JSON), under ``validation_dir/gx``.
    """

    suite: str
    success: bool
    n_validated: int
    n_expectations: int
    failures: dict[str, str] = field(default_factory=dict)
    failed_expectations: list[str] = field(default_factory=list)
    data_docs_index: Path | None = None
    results_dir: Path | None = None


def mfcc_frames(n_samples: int, sample_rate: int = 16000) -> int:
    """MFCC frames python_speech_features yields for `n_samples` samples (25 ms window, 10 ms hop, no padding
    beyond the last partial frame): 1 when n_samples ≤ window, else 1 + ceil((n_samples − window) / hop)."""
    win, hop = round(0.025 * sample_rate), round(0.010 * sample_rate)
    return 1 if n_samples <= win else 1 + math.ceil((n_samples - win) / hop)


def prepare_table(manifest: pd.DataFrame, *, fps: float = 25.0, sample_rate: int = 16000,
                  profile: DatasetProfile | None = None) -> pd.DataFrame:
    """The ok rows of `manifest` as GE gets them: the checked columns plus the helper columns (module docstring),
    with a fresh 0..n−1 index; with a `profile`, also fps_source, the profile's extra columns and
    ``unknown_words`` (count) with ``unknown_word_list`` (for the reason). `manifest` is not modified.

    Units: n_frames in video frames at `fps`, n_samples in audio samples at `sample_rate`, n_mfcc in 100 Hz
    MFCC frames, duration_s in seconds, landmarks_min/max and crop_size in face-crop pixels.

    Raises:
        ValueError: a required column is missing, fps or sample_rate is not positive, an ok row has a null
            clip_id (it could not be quarantined by id), or a numeric column holds non-numbers.
    """
    if not fps > 0 or not sample_rate > 0:
        raise ValueError(f"fps and sample_rate must be positive, got fps={fps}, sample_rate={sample_rate}")
    extra = _profile_columns(profile)
    missing = [c for c in (*REQUIRED_COLUMNS, *extra) if c not in manifest.columns]
    if missing:
        raise ValueError(f"manifest lacks column(s) {', '.join(missing)} (see storage/manifest.py)")

    ok = manifest.loc[manifest["status"] == "ok", [*REQUIRED_COLUMNS, *extra]].reset_index(drop=True)
    if ok["clip_id"].isna().any():
        raise ValueError(f"{int(ok['clip_id'].isna().sum())} ok manifest row(s) have no clip_id")

    t = pd.DataFrame(index=ok.index)
    for c in ("clip_id", "dataset", "speaker", "split", "text"):
        t[c] = ok[c].astype(object).where(ok[c].notna(), None)
    for c in _NUMERIC:
        s = pd.to_numeric(ok[c], errors="raise")
        # Plain numpy dtypes for GE: int64 when complete, float64 (NaN) when values are missing.
        t[c] = s.astype("float64") if (s.isna().any() or not pd.api.types.is_integer_dtype(s)) else s.astype("int64")

    frames_per_audio = sample_rate / fps
    speaker_key = pd.Series(list(zip(t["dataset"].fillna(""), t["speaker"])), index=t.index)
    split_count = t.loc[t["speaker"].notna()].groupby(speaker_key[t["speaker"].notna()])["split"].nunique()
    t["splits_of_speaker"] = speaker_key.map(split_count).where(t["speaker"].notna()).astype("float64")
    t["frames_vs_duration"] = (t["n_frames"] - t["duration_s"] * fps).astype("float64")
    t["audio_minus_video_frames"] = (t["n_samples"] / frames_per_audio - t["n_frames"]).astype("float64")
    expected_mfcc = t["n_samples"].map(lambda n: np.nan if pd.isna(n) else mfcc_frames(int(n), sample_rate))
    t["mfcc_minus_expected"] = (t["n_mfcc"] - expected_mfcc).astype("float64")
    t["landmarks_over_crop"] = (t["landmarks_max"] - t["crop_size"]).astype("float64")
    # Null text is reported by the not-null check alone: text_chars stays NaN there, which GE skips.
    t["text_chars"] = t["text"].map(lambda s: float(len(s.strip())) if isinstance(s, str) else np.nan).astype("float64")
    t["n_words"] = ok["words"].map(_length).astype("int64")
    if profile is None:
        return t[list(_GX_COLUMNS)]
    t["fps_source"] = pd.to_numeric(ok["fps_source"], errors="raise").astype("float64")
    for c in extra:  # value sets as Python objects (None when null), ranges as float64 (NaN when null)
        t[c] = (ok[c].astype(object).where(ok[c].notna(), None) if c in profile.value_sets
                else pd.to_numeric(ok[c], errors="raise").astype("float64"))
    unknown = ok["words"].map(lambda ws: _unknown_words(ws, profile.vocabulary))
    t["unknown_words"] = unknown.map(len).astype("int64")
    t["unknown_word_list"] = unknown.map(", ".join)
    return t[[*_GX_COLUMNS, "fps_source", *extra, "unknown_words", "unknown_word_list"]]


def _profile_columns(profile: DatasetProfile | None) -> list[str]:
    """Manifest columns a profile's checks read beyond REQUIRED_COLUMNS (helper columns are computed here)."""
    if profile is None:
        return []
    helpers = set(_HELPERS) | set(REQUIRED_COLUMNS)
    return [c for c in (*profile.ranges, *profile.value_sets) if c not in helpers]


def _unknown_words(words, vocabulary: frozenset[str] | None) -> list[str]:
    """The labels of `words` (list of {word, …}) outside `vocabulary`, sorted and distinct; [] when open."""
    if vocabulary is None or _length(words) == 0:
        return []
    return sorted({w["word"] for w in words} - vocabulary)


def _length(words) -> int:
    if words is None or (isinstance(words, float) and math.isnan(words)):
        return 0
    return len(words)


def _fmt(x) -> str:
    """A number for a sentence: integers without a decimal point, others with at most 3 decimals."""
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:.3f}".rstrip("0").rstrip(".")


def _checks(fps: float, sample_rate: int, profile: DatasetProfile | None = None) -> list[tuple[str, str, dict, object]]:
    """(check name, GE expectation class name, its kwargs, reason(row) → str) in suite order."""
    per_frame = sample_rate / fps
    checks = [_present(c) for c in _NOT_NULL]
    checks += [
        ("clip_id_unique", "ExpectColumnValuesToBeUnique", {"column": "clip_id"},
         lambda r: f"clip_id {r['clip_id']} appears {r['_dup']} times among the ok rows"),
        ("split_known", "ExpectColumnValuesToBeInSet", {"column": "split", "value_set": list(SPLITS)},
         lambda r: f"split {r['split']!r} is not one of {', '.join(SPLITS)}"),
        ("speaker_in_one_split", "ExpectColumnValuesToBeBetween",
         {"column": "splits_of_speaker", "min_value": 1, "max_value": 1},
         lambda r: f"speaker {r['speaker']} appears in {_fmt(r['splits_of_speaker'])} splits ({r['_splits']}), "
                   "but splits must be speaker-disjoint"),
        ("frames_match_duration", "ExpectColumnValuesToBeBetween",
         {"column": "frames_vs_duration", "min_value": -1, "max_value": 1},
         lambda r: f"frame count and duration differ by {_fmt(abs(r['frames_vs_duration']))} frames (> 1): "
                   f"{_fmt(r['n_frames'])} frames vs {_fmt(r['duration_s'])} s × {_fmt(fps)} fps"),
        ("audio_matches_video", "ExpectColumnValuesToBeBetween",
         {"column": "audio_minus_video_frames", "min_value": -1, "max_value": 1},
         lambda r: f"audio and video lengths differ by {_fmt(abs(r['audio_minus_video_frames']))} frames (> 1): "
                   f"{_fmt(r['n_samples'])} samples = {_fmt(r['n_samples'] / per_frame)} frames vs "
                   f"{_fmt(r['n_frames'])} video frames"),
        ("mfcc_matches_audio", "ExpectColumnValuesToBeBetween",
         {"column": "mfcc_minus_expected", "min_value": -1, "max_value": 1},
         lambda r: f"{_fmt(r['n_mfcc'])} MFCC frames where {_fmt(r['n_mfcc'] - r['mfcc_minus_expected'])} are "
                   f"expected for {_fmt(r['n_samples'])} samples (off by {_fmt(abs(r['mfcc_minus_expected']))} > 1)"),
        ("landmarks_min_in_crop", "ExpectColumnValuesToBeBetween", {"column": "landmarks_min", "min_value": 0},
         lambda r: f"landmarks outside the crop: min coordinate {_fmt(r['landmarks_min'])} px < 0"),
        ("landmarks_max_in_crop", "ExpectColumnValuesToBeBetween", {"column": "landmarks_over_crop", "max_value": 0},
         lambda r: f"landmarks outside the crop: max coordinate {_fmt(r['landmarks_max'])} px > crop size "
                   f"{_fmt(r['crop_size'])} px"),
        ("no_nan", "ExpectColumnValuesToBeBetween", {"column": "nan_count", "min_value": 0, "max_value": 0},
         lambda r: f"{_fmt(r['nan_count'])} NaN values in the clip's arrays"),
        ("text_not_empty", "ExpectColumnValuesToBeBetween", {"column": "text_chars", "min_value": 1},
         lambda r: "text is empty"),
        ("words_present", "ExpectColumnValuesToBeBetween", {"column": "n_words", "min_value": 1},
         lambda r: "no word labels (words list is empty)"),
    ]
    return checks + (_profile_checks(profile) if profile else [])


def _present(column: str) -> tuple[str, str, dict, object]:
    """The `<column>_present` check: the column is not null."""
    return (f"{column}_present", "ExpectColumnValuesToNotBeNull", {"column": column}, lambda r: f"{column} is missing")


def _profile_checks(p: DatasetProfile) -> list[tuple[str, str, dict, object]]:
    """The dataset checks of a profile (module docstring, second table)."""
    checks: list[tuple[str, str, dict, object]] = [
        (f"dataset_is_{p.name}", "ExpectColumnValuesToBeInSet", {"column": "dataset", "value_set": [p.name]},
         lambda r: f"dataset {r['dataset']!r} in a {p.name} store"),
    ]
    for column, (lo, hi) in p.ranges.items():
        checks.append((f"{column}_in_range", "ExpectColumnValuesToBeBetween",
                       {"column": column, "min_value": lo, "max_value": hi},
                       (lambda c, lo, hi: lambda r: f"{c} {_fmt(r[c]) if pd.notna(r[c]) else 'missing'} is outside "
                                                    f"[{_fmt(lo)}, {_fmt(hi)}] for {p.name}")(column, lo, hi)))
    for column, values in p.value_sets.items():
        checks.append(_present(column))
        checks.append((f"{column}_known", "ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)},
                       (lambda c, v: lambda r: f"{c} {r[c]!r} is not one of {', '.join(v)}")(column, values)))
    if p.vocabulary is not None:
        checks.append(("words_in_vocabulary", "ExpectColumnValuesToBeBetween",
                       {"column": "unknown_words", "min_value": 0, "max_value": 0},
                       lambda r: f"word(s) outside the {p.name} vocabulary: {r['unknown_word_list']}"))
    if p.texts is not None:
        checks.append(("text_known", "ExpectColumnValuesToBeInSet", {"column": "text", "value_set": sorted(p.texts)},
                       lambda r: f"text {r['text']!r} is not one of the {len(p.texts)} {p.name} sentences"))
    return checks


def validate_clips(
    manifest: pd.DataFrame,
    validation_dir: Path,
    *,
    fps: float = 25.0,
    sample_rate: int = 16000,
    run_name: str | None = None,
    profile: DatasetProfile | None = None,
) -> ValidationReport:
    """Validate the ok rows of a store manifest with one Great Expectations suite; write results and Data Docs.

    Args:
        manifest: the store's manifest table (storage/manifest.py schema; `REQUIRED_COLUMNS` must be present,
            other columns are ignored). Rows whose status is not "ok" are ignored. Units: n_frames video frames
            at `fps`, n_samples audio samples at `sample_rate`, n_mfcc 100 Hz MFCC frames, duration_s seconds,
            landmarks_min/max and crop_size face-crop pixels; words a list (or array) of {word, start_frame,
            end_frame}.
        validation_dir: the store's ``validation/`` folder; created if missing. GE's file context lives in
            ``validation_dir/gx``; running again on the same folder adds a run.
        fps: video frame rate of the store (25).
        sample_rate: audio sample rate of the store (16000); one frame = sample_rate / fps samples.
        run_name: optional GE run name (e.g. the flow-run id), shown in the Data Docs; GE's default otherwise.
        profile: the dataset's profile: adds its dataset checks (module docstring) and names the suite
            ``talkface_clips_<dataset>``; None runs the common checks alone as ``talkface_clips``.

    Returns:
        A `ValidationReport`; `failures` maps each failing clip_id to its reason(s), e.g.
        "validation: audio and video lengths differ by 3.2 frames (> 1): …".

    Raises:
        ValueError: see `prepare_table` (missing columns, bad fps/sample_rate, ok rows without clip_id,
            non-numeric values).
        RuntimeError: GE could not evaluate an expectation (its exception is in the message), so the validation
            did not happen.
    """
    table = prepare_table(manifest, fps=fps, sample_rate=sample_rate, profile=profile)
    checks = _checks(fps, sample_rate, profile)
    suite_name = f"{SUITE_NAME}_{profile.name}" if profile else SUITE_NAME

    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    validation_dir = Path(validation_dir)
    validation_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=validation_dir)
    # No tqdm bars in flow logs; set for this context object only (great_expectations.yml is left as scaffolded).
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)

    source = context.data_sources.add_or_update_pandas(name=_DATASOURCE)  # replaces any earlier run's asset
    batch_definition = source.add_dataframe_asset(name=_ASSET).add_batch_definition_whole_dataframe(_BATCH_DEFINITION)

    # Expectations go in through the constructor: `add_expectation` on a suite whose name is already stored
    # (a re-run) writes the suite to disk once per expectation.
    suite = context.suites.add_or_update(gx.ExpectationSuite(
        name=suite_name,
        expectations=[getattr(gx.expectations, cls)(**kwargs, meta={"check": name}) for name, cls, kwargs, _ in checks],
        meta={"notes": f"talkface per-clip checks on ok manifest rows (fps={fps}, sample_rate={sample_rate}"
                       f"{', dataset ' + profile.name if profile else ''}); see tasks/validate.py"},
    ))
    checkpoint = context.checkpoints.add_or_update(  # stores the validation definition too
        gx.Checkpoint(
            name=suite_name,
            validation_definitions=[gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)],
            actions=[UpdateDataDocsAction(name="update_data_docs")],
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["clip_id"]},
        )
    )
    result = checkpoint.run(
        batch_parameters={"dataframe": table},
        run_id=RunIdentifier(run_name=run_name) if run_name else None,
    )

    reasons_by_check = {name: reason for name, _, _, reason in checks}
    order = {name: i for i, (name, _, _, _) in enumerate(checks)}
    positions = table.groupby("clip_id").indices  # clip_id → row positions
    dup_counts = table["clip_id"].value_counts()
    splits_by_speaker = table.groupby([table["dataset"].fillna(""), "speaker"])["split"].agg(
        lambda s: ", ".join(sorted(s.dropna().unique())))
    failures: dict[str, list[tuple[int, str]]] = {}
    failed: list[str] = []
    n_expectations = 0
    for suite_result in result.run_results.values():
        for r in suite_result.results:
            n_expectations += 1
            if r.success:
                continue
            name = r.expectation_config.meta.get("check", r.expectation_config.type)
            failed.append(name)
            error = _exception_message(r.exception_info)
            if error:
                raise RuntimeError(
                    f"Great Expectations could not evaluate {name} ({r.expectation_config.type}): {error}"
                )
            column = r.expectation_config.kwargs["column"]
            for hit in r.result.get("unexpected_index_list") or []:
                row = _row_for(table, positions, hit["clip_id"], column, hit.get(column))
                row["_dup"] = int(dup_counts.get(hit["clip_id"], 1))
                row["_splits"] = splits_by_speaker.get((row["dataset"] or "", row["speaker"]), "")
                reason = (order.get(name, len(order)), "validation: " + reasons_by_check[name](row))
                bucket = failures.setdefault(hit["clip_id"], [])
                if reason not in bucket:  # a duplicated clip_id reports each hit once
                    bucket.append(reason)

    docs_root = _as_given(Path(context.root_directory), validation_dir)
    return ValidationReport(
        suite=suite_name,
        success=bool(result.success),
        n_validated=len(table),
        n_expectations=n_expectations,
        failures={cid: "; ".join(r for _, r in sorted(failures[cid])) for cid in sorted(failures)},
        failed_expectations=sorted(failed, key=lambda n: order.get(n, len(order))),
        data_docs_index=_as_given(_docs_index(context, docs_root), validation_dir),
        results_dir=docs_root / "uncommitted" / "validations",
    )


def _row_for(table: pd.DataFrame, positions: dict, clip_id: str, column: str, value) -> dict:
    """The row GE reported: by clip_id, and among duplicated clip_ids the one whose `column` holds `value`."""
    rows = table.iloc[positions[clip_id]]
    if len(rows) > 1:
        same = rows[column].isna() if value is None or (isinstance(value, float) and math.isnan(value)) \
            else rows[column] == value
        if same.any():
            rows = rows[same]
    return rows.iloc[0].to_dict()


def _as_given(path: Path, validation_dir: Path) -> Path:
    """`path` (absolute, from GE) re-anchored on `validation_dir` as the caller spelled it (relative stays relative),
    so ``path.relative_to(store_dir)`` works for the caller; unchanged when it is not under `validation_dir`."""
    for base in (Path(os.path.abspath(validation_dir)), validation_dir.resolve()):
        for p in (path, path.resolve()):
            try:
                return validation_dir / p.relative_to(base)
            except ValueError:
                continue
    return path


def _exception_message(info) -> str | None:
    """GE's exception info, either {raised_exception, exception_message, …} or {metric id: such an info}."""
    if not info:
        return None
    infos = [info] if "raised_exception" in info else list(info.values())
    messages = [
        str(i["exception_message"] if isinstance(i, dict) else getattr(i, "exception_message", i))
        for i in infos
        if (i.get("raised_exception") if isinstance(i, dict) else getattr(i, "raised_exception", True))
    ]
    return "; ".join(messages) or None


def _docs_index(context, root: Path) -> Path:
    """The local Data Docs site's index.html (from GE's site URL; GE's default location when none is reported)."""
    for site in context.get_docs_sites_urls(only_if_exists=False):
        url = site.get("site_url")
        if url and url.startswith("file://"):
            return Path(unquote(urlparse(url).path))
    return root / "uncommitted" / "data_docs" / "local_site" / "index.html"
