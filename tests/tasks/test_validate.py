"""tasks/validate.py: the Great Expectations checks on the per-clip manifest.

A unit test of the validation logic on a table, so the rows are hand-made, shaped like GRID's (75 frames at 25 fps,
48000 samples at 16 kHz, 299 MFCC frames, 3.0 s, 128-px crop, landmarks in [10, 120]); they go through the real
manifest schema (storage/manifest.py, a Parquet round trip) so dtypes and the `words` column are as in a store.
"""
from __future__ import annotations

import pandas as pd
import pytest

from storage import manifest as mf
from tasks.validate import REQUIRED_COLUMNS, mfcc_frames, prepare_table, validate_clips

pytestmark = pytest.mark.timeout(180)

TEXT = "bin blue at f two now"


def clip(clip_id: str, split: str = "train", **overrides) -> dict:
    """One ok GRID-like manifest row; `overrides` plant a defect."""
    speaker = clip_id.split("/")[0]
    row = mf.empty_row()
    row.update(
        clip_id=clip_id, dataset="grid", speaker=speaker, split=split,
        source_path=f"grid/{speaker}/{clip_id.split('/')[1]}.mpg", source_sha256="0" * 64,
        status=mf.OK, reason="", shard="shard-00000", frame_start=0, n_frames=75, audio_start=0, n_samples=48000,
        mfcc_start=0, n_mfcc=299, fps_source=25.0, duration_s=3.0, text=TEXT,
        words=[{"word": w, "start_frame": 12 * i, "end_frame": 12 * i + 11} for i, w in enumerate(TEXT.split())],
        words_timed=True, faces_missing=0, landmarks_min=10.0, landmarks_max=120.0, nan_count=0, crop_size=128,
    )
    row.update(overrides)
    return row


CLEAN = [clip(f"s1/clean{i}") for i in range(4)] + [clip(f"s3/clean{i}", "val") for i in range(2)] + [
    clip(f"s4/clean{i}", "test") for i in range(2)
]

# clip_id → a phrase its reason must contain; each of these clips carries exactly one defect.
DEFECTS = {
    "s1/av_mismatch": "audio and video lengths differ by 3.2 frames (> 1)",
    "s1/landmarks_high": "landmarks outside the crop: max coordinate 131.5 px > crop size 128 px",
    "s1/landmarks_neg": "landmarks outside the crop: min coordinate -2 px < 0",
    "s1/nan": "4 NaN values",
    "s1/empty_text": "text is empty",
    "s1/no_text": "text is missing",
    "s1/no_words": "no word labels",
    "s1/long_video": "frame count and duration differ by 3 frames (> 1)",
    "s1/mfcc_short": "290 MFCC frames where 299 are expected",
    "s5/dev_split": "split 'dev' is not one of train, val, test",
    "s2/a": "speaker s2 appears in 2 splits (test, train)",
    "s2/b": "speaker s2 appears in 2 splits (test, train)",
    "s1/dup": "clip_id s1/dup appears 2 times",
}
DEFECTIVE = [
    # 50048 samples = 78.2 frames of 640 samples; MFCC kept consistent with the audio (312) so only A/V fails.
    clip("s1/av_mismatch", n_samples=50048, n_mfcc=mfcc_frames(50048)),
    clip("s1/landmarks_high", landmarks_max=131.5),
    clip("s1/landmarks_neg", landmarks_min=-2.0),
    clip("s1/nan", nan_count=4),
    clip("s1/empty_text", text="   "),
    clip("s1/no_text", text=None),
    clip("s1/no_words", words=[]),
    # 78 frames for a 3.0 s container; audio and MFCC match the 78 frames, so only the duration check fails.
    clip("s1/long_video", n_frames=78, n_samples=78 * 640, n_mfcc=mfcc_frames(78 * 640)),
    clip("s1/mfcc_short", n_mfcc=290),
    clip("s5/dev_split", "dev"),
    clip("s2/a", "train"),
    clip("s2/b", "test"),
    clip("s1/dup"),
    clip("s1/dup"),
]
# Already quarantined upstream: every defect there, and its speaker (s3, val) in another split: all ignored.
QUARANTINED = [
    clip("s3/broken", "train", status=mf.QUARANTINED, reason="no face in 75/75 frames", nan_count=9, text="",
         words=[], landmarks_max=900.0, n_samples=1000, n_mfcc=None, n_frames=None),
]


def as_store_manifest(rows: list[dict], tmp_path) -> pd.DataFrame:
    """Rows → the store's manifest.parquet → DataFrame, as the build flow would read it."""
    path = tmp_path / "manifest.parquet"
    mf.write(rows, path)
    return mf.read(path)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("store")
    manifest = as_store_manifest(CLEAN + DEFECTIVE + QUARANTINED, tmp)
    before = manifest.copy()
    report = validate_clips(manifest, tmp / "validation")
    pd.testing.assert_frame_equal(manifest, before)  # the caller's table is not modified
    return tmp, report


def test_mfcc_frames_matches_python_speech_features_framing():
    assert mfcc_frames(48000) == 299  # GRID: 3.0 s
    assert mfcc_frames(400) == 1 and mfcc_frames(401) == 2 and mfcc_frames(0) == 1


def test_each_defect_quarantines_exactly_its_clip(store):
    _, report = store
    assert set(report.failures) == set(DEFECTS)
    for clip_id, phrase in DEFECTS.items():
        reason = report.failures[clip_id]
        assert reason.startswith("validation: ")
        assert phrase in reason, (clip_id, reason)
        assert "; " not in reason, f"{clip_id} should fail one check only: {reason}"


def test_clean_rows_pass_and_quarantined_rows_are_ignored(store):
    _, report = store
    assert not report.success
    assert not any(c["clip_id"] in report.failures for c in CLEAN + QUARANTINED)
    assert report.n_validated == len(CLEAN) + len(DEFECTIVE)
    assert report.n_expectations >= 12
    assert report.failed_expectations == [
        "text_present", "clip_id_unique", "split_known", "speaker_in_one_split", "frames_match_duration",
        "audio_matches_video", "mfcc_matches_audio", "landmarks_min_in_crop", "landmarks_max_in_crop", "no_nan",
        "text_not_empty", "words_present",
    ]


def test_several_reasons_are_joined(tmp_path):
    manifest = as_store_manifest(CLEAN + [clip("s1/two", nan_count=1, landmarks_max=200.0)], tmp_path)
    reason = validate_clips(manifest, tmp_path / "validation").failures["s1/two"]
    assert reason == (
        "validation: landmarks outside the crop: max coordinate 200 px > crop size 128 px; "
        "validation: 1 NaN values in the clip's arrays"
    )


def test_data_docs_and_results_are_written_and_a_rerun_works(store):
    tmp, report = store
    validation_dir = tmp / "validation"
    assert report.data_docs_index.is_file() and report.data_docs_index.name == "index.html"
    assert validation_dir in report.data_docs_index.parents
    pages = list(report.data_docs_index.parent.glob("validations/**/*.html"))
    assert pages and any("s1/av_mismatch" in p.read_text() for p in pages)
    assert list(report.results_dir.glob("**/*.json"))

    # Same folder again, clean rows only (the store's quarantined row included): passes, docs gain a run.
    again = validate_clips(as_store_manifest(CLEAN + QUARANTINED, tmp), validation_dir)
    assert again.success and again.failures == {} and again.failed_expectations == []
    assert again.n_validated == len(CLEAN) and again.n_expectations == report.n_expectations
    assert again.data_docs_index == report.data_docs_index
    assert len(list(report.results_dir.glob("**/*.json"))) == 2

    # No ok rows at all: success with zero validated rows.
    empty = validate_clips(as_store_manifest(QUARANTINED, tmp), validation_dir)
    assert empty.success and empty.n_validated == 0 and empty.failures == {}


def test_prepare_table_helper_columns():
    rows = pd.DataFrame([clip("s1/x"), clip("s1/y", "test", n_samples=50048), clip("s1/z", status=mf.QUARANTINED)])
    table = prepare_table(rows)
    assert list(table["clip_id"]) == ["s1/x", "s1/y"]
    assert list(table["audio_minus_video_frames"]) == pytest.approx([0.0, 3.2])
    assert list(table["frames_vs_duration"]) == [0.0, 0.0]
    assert list(table["mfcc_minus_expected"]) == [0.0, 299 - mfcc_frames(50048)]
    assert list(table["splits_of_speaker"]) == [2.0, 2.0]
    assert list(table["n_words"]) == [6, 6] and list(table["text_chars"]) == [len(TEXT)] * 2


def test_missing_column_and_bad_rates_raise(tmp_path):
    rows = pd.DataFrame([clip("s1/x")])
    with pytest.raises(ValueError, match="nan_count"):
        validate_clips(rows.drop(columns=["nan_count"]), tmp_path)
    with pytest.raises(ValueError, match="fps"):
        prepare_table(rows, fps=0)
    assert set(REQUIRED_COLUMNS) <= set(mf.COLUMNS)


def test_dataset_profile_adds_its_checks_and_names_the_suite(tmp_path):
    from tasks.datasets import PROFILES

    odd = "bin blue at w two now"  # GRID has no letter w
    rows = CLEAN + [
        clip("s1/odd_word", text=odd, words=[{"word": w, "start_frame": None, "end_frame": None} for w in odd.split()]),
        clip("s1/ntsc", fps_source=29.97),
        clip("s1/five_words", words=clip("s1/x")["words"][:5]),
        clip("s1/other_dataset", dataset="lrw"),
    ]
    report = validate_clips(as_store_manifest(rows, tmp_path), tmp_path / "validation", profile=PROFILES["grid"])
    assert report.suite == "talkface_clips_grid"
    assert report.failures == {
        "s1/odd_word": "validation: word(s) outside the grid vocabulary: w",
        "s1/ntsc": "validation: fps_source 29.97 is outside [24.9, 25.1] for grid",
        "s1/five_words": "validation: n_words 5 is outside [6, 6] for grid",
        "s1/other_dataset": "validation: dataset 'lrw' in a grid store",
    }
    assert report.failed_expectations == ["dataset_is_grid", "fps_source_in_range", "n_words_in_range",
                                          "words_in_vocabulary"]
    assert validate_clips(as_store_manifest(CLEAN, tmp_path), tmp_path / "plain").suite == "talkface_clips"


def test_crema_d_profile_checks_extras_and_sentences(tmp_path):
    from tasks.datasets import PROFILES

    text = "Don't forget a jacket"

    def crema(clip_id, **overrides):
        words = [{"word": w, "start_frame": None, "end_frame": None} for w in text.split()]
        fields = dict(dataset="crema_d", fps_source=29.97, text=text, words=words, words_timed=False, emotion="ANG",
                      intensity="XX", sex="Male", age=51)
        return clip(f"1001/{clip_id}", **{**fields, **overrides})

    rows = [crema("1001_DFA_ANG_XX"), crema("1001_DFA_BOR_XX", emotion="BOR"), crema("1001_DFA_ANG_HI", sex=None),
            crema("1001_XYZ_ANG_XX", text="Don't forget a coat",
                  words=[{"word": w, "start_frame": None, "end_frame": None} for w in "Don't forget a coat".split()]),
            crema("1001_DFA_SAD_XX", age=7)]
    failures = validate_clips(as_store_manifest(rows, tmp_path), tmp_path / "v", profile=PROFILES["crema_d"]).failures
    assert failures == {
        "1001/1001_DFA_BOR_XX": "validation: emotion 'BOR' is not one of ANG, DIS, FEA, HAP, NEU, SAD",
        "1001/1001_DFA_ANG_HI": "validation: sex is missing",
        "1001/1001_XYZ_ANG_XX": "validation: word(s) outside the crema_d vocabulary: coat; validation: text "
                           "\"Don't forget a coat\" is not one of the 12 crema_d sentences",
        "1001/1001_DFA_SAD_XX": "validation: age 7 is outside [18, 80] for crema_d",
    }
