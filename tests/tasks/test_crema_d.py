"""CREMA-D adapter and build on the four real official CREMA-D clips of the shared samples
(`../shared/data/samples/crema_d/`: VideoFlash/*.flv at 29.97 fps, VideoDemographics.csv); skipped when a clone
has no shared samples."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from storage import manifest, store
from tasks.datasets import crema_d
from tests.conftest import assert_resampled_from_29_97_fps

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "samples" / "crema_d"
CLIPS = ("1001_DFA_ANG_XX", "1001_DFA_HAP_XX", "1001_DFA_NEU_XX", "1001_DFA_SAD_XX")


@pytest.fixture(scope="module")
def samples() -> Path:
    if not (SAMPLES / "VideoFlash").is_dir():
        pytest.skip(f"shared CREMA-D samples missing: {SAMPLES} (a clone without ../shared)")
    return SAMPLES


def make_raw(samples: Path, root: Path, clips: dict[str, str]) -> Path:
    """A raw root in the official layout: VideoFlash/<new name>.flv copied from sample clips, plus the
    demographics file. `clips` maps new file stem → sample clip stem."""
    (root / "VideoFlash").mkdir(parents=True)
    for new, old in clips.items():
        shutil.copy(samples / "VideoFlash" / f"{old}.flv", root / "VideoFlash" / f"{new}.flv")
    shutil.copy(samples / "VideoDemographics.csv", root / "VideoDemographics.csv")
    return root


def test_discover_the_real_samples(samples):
    clips = crema_d.discover(samples)
    assert [c.clip_id for c in clips] == list(CLIPS)
    for c in clips:
        assert c.label_error is None and c.dataset == "crema_d" and c.speaker == "1001"
        assert c.text == "Don't forget a jacket" and not c.words_timed
        assert [w.word for w in c.words] == ["Don't", "forget", "a", "jacket"]
        assert c.source_path == f"VideoFlash/{c.clip_id}.flv" and c.path.exists()
        assert c.extras == {"emotion": c.clip_id.split("_")[2], "intensity": "XX", "sex": "Male", "age": 51}
    assert {c.split for c in clips} == {crema_d.speaker_split("1001", crema_d.TEST_SPEAKERS, 15 / 85)}
    assert crema_d.label_files(samples) == [samples / "VideoDemographics.csv"]


def test_sentence_codes_cover_the_official_file_list(samples):
    with open(samples / "SentenceFilenames.csv", newline="") as f:
        names = [row["Filename"] for row in csv.DictReader(f)]
    assert {n.split("_")[1] for n in names} == set(crema_d.SENTENCES)
    assert {n.split("_")[2] for n in names} == set(crema_d.EMOTIONS)
    assert {n.split("_")[3] for n in names} <= set(crema_d.INTENSITIES)
    assert all(crema_d.parse_name(n) for n in names[:500])


def test_split_puts_design_test_actors_in_test_and_is_actor_disjoint(samples):
    with open(samples / "VideoDemographics.csv", newline="") as f:
        actors = [row["ActorID"] for row in csv.DictReader(f)]
    assert len(actors) == 91
    splits = {a: crema_d.speaker_split(a, crema_d.TEST_SPEAKERS, crema_d.VAL_FRACTION_OF_REST) for a in actors}
    test = {a for a, s in splits.items() if s == "test"}
    assert test == {str(1000 + n) for n in (15, 20, 21, 30, 33, 52, 62, 81, 82, 89)}
    assert set(splits.values()) == {"train", "val", "test"}
    rest = [s for a, s in splits.items() if a not in test]
    assert 0.05 < rest.count("val") / len(rest) < 0.35  # 15/85 expected, by hash


def test_malformed_name_and_unknown_actor_are_label_errors(samples, tmp_path):
    raw = make_raw(samples, tmp_path / "raw", {
        "1001_DFA_ANG_XX": "1001_DFA_ANG_XX",
        "1001-DFA-HAP": "1001_DFA_HAP_XX",  # not the four-part grammar
        "1001_XYZ_NEU_XX": "1001_DFA_NEU_XX",  # unknown sentence code
        "1999_DFA_SAD_XX": "1001_DFA_SAD_XX",  # actor not in the demographics
    })
    by_id = {c.clip_id: c for c in crema_d.discover(raw)}
    assert by_id["1001_DFA_ANG_XX"].label_error is None
    assert "is not <ActorID>_<Sentence>_<Emotion>_<Intensity>" in by_id["1001-DFA-HAP"].label_error
    assert "'XYZ' is not a CREMA-D sentence code" in by_id["1001_XYZ_NEU_XX"].label_error
    assert "actor 1999 is not in VideoDemographics.csv" in by_id["1999_DFA_SAD_XX"].label_error
    assert by_id["1999_DFA_SAD_XX"].extras == {"emotion": "SAD", "intensity": "XX"}

    (raw / "VideoDemographics.csv").unlink()
    by_id = {c.clip_id: c for c in crema_d.discover(raw)}
    assert all(c.label_error for c in by_id.values())
    assert "VideoDemographics.csv not found" in by_id["1001_DFA_ANG_XX"].label_error
    assert crema_d.label_files(raw) == []


def test_build_the_real_clips(samples, tmp_path):
    from flows.build_dataset import BuildParams, build_dataset

    raw = make_raw(samples, tmp_path / "CREMA-D raw – ü", {**{c: c for c in CLIPS}, "1999_DFA_ANG_XX": CLIPS[0],
                                                          "1001_DFA_FEA": CLIPS[1]})
    (raw / "VideoFlash" / "1001_DFA_DIS_HI.flv").write_bytes(b"")
    (raw / "VideoFlash" / "1001_DFA_FEA_LO.flv").write_bytes((samples / "VideoFlash" / f"{CLIPS[2]}.flv").read_bytes()[:20_000])
    out = Path(build_dataset(BuildParams(dataset="crema_d", raw_root=raw, data_root=tmp_path / "data", shard_size=4)))
    assert out.parent.parent.name == "stores" and out.parent.name == "crema_d"
    table = manifest.read(out / store.MANIFEST).set_index("clip_id")
    assert list(table.reset_index().columns) == manifest.COLUMNS

    bad = table.drop(list(CLIPS))
    assert (bad.status == "quarantined").all() and bad.reason.str.len().gt(0).all()
    assert "actor 1999 is not in VideoDemographics.csv" in bad.reason["1999_DFA_ANG_XX"]
    assert "is not <ActorID>_<Sentence>_<Emotion>_<Intensity>" in bad.reason["1001_DFA_FEA"]
    assert bad.shard.isna().all()

    for clip_id in CLIPS:
        row = table.loc[clip_id]
        assert row.status == "ok", f"{clip_id}: {row.reason}"
        assert row.text == "Don't forget a jacket" and not row.words_timed and len(row.words) == 4
        assert (row.emotion, row.intensity, row.sex, row.age) == (clip_id.split("_")[2], "XX", "Male", 51)
        assert_resampled_from_29_97_fps(out, row)
    card = store.read_card(out)
    assert card["counts"]["ok"] == 4 and card["validation"]["success"]
    assert card["validation"]["suite"] == "talkface_clips_crema_d"
    profile = card["profile"]
    assert len(profile["expected"]["texts"]) == 12 and profile["expected"]["value_sets"]["sex"] == ["Female", "Male"]
    observed = profile["observed"]
    assert observed["fps_source"] == {"29.97": 4} and observed["texts"] == 1 and observed["vocabulary_size"] == 4
    assert observed["extras"]["emotion"] == {"ANG": 1, "HAP": 1, "NEU": 1, "SAD": 1}
    assert observed["extras"]["sex"] == {"Male": 4} and observed["age"]["median"] == 51
