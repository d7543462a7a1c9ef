"""ffmpeg decoding on real clips, including damaged and odd ones made from them with ffmpeg."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tasks import media


def test_decode_a_grid_clip(sample_clip):
    d = media.decode(sample_clip)
    assert d.frames.shape == (75, 288, 360, 3) and d.frames.dtype == np.uint8
    assert d.audio.dtype == np.int16 and abs(len(d.audio) / 640 - 75) <= 1  # 16 kHz: 640 samples per frame
    assert d.fps_source == 25.0 and d.duration_s == pytest.approx(3.0, abs=0.05)
    assert d.frames.std() > 10  # real picture content, not a blank buffer


def test_odd_frame_rate_is_resampled_to_25_fps(sample_clip, tmp_path):
    odd = tmp_path / "thirty fps ü.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(sample_clip), "-r", "30", "-c:v", "mpeg4", "-c:a", "aac",
                    str(odd)], check=True)
    d = media.decode(odd)
    assert d.fps_source == 30.0
    assert abs(len(d.frames) - 75) <= 1  # 3 s at 25 fps
    assert abs(len(d.audio) / 640 - len(d.frames)) <= 1


def test_damaged_inputs_raise_media_errors(sample_clip, tmp_path):
    empty = tmp_path / "empty.mpg"
    empty.write_bytes(b"")
    with pytest.raises(media.MediaError, match="empty"):
        media.decode(empty)
    garbage = tmp_path / "garbage.mpg"
    garbage.write_bytes(b"not a video at all" * 100)
    with pytest.raises(media.MediaError, match="decode error"):
        media.decode(garbage)
    silent = tmp_path / "silent.mpg"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(sample_clip), "-an", "-c:v", "copy", str(silent)], check=True)
    with pytest.raises(media.MediaError, match="audio stream missing"):
        media.decode(silent)


def test_truncated_clip_decodes_only_its_first_frames(sample_clip, tmp_path):
    cut = tmp_path / "cut.mpg"
    cut.write_bytes(sample_clip.read_bytes()[:30_000])
    d = media.decode(cut)
    assert 0 < len(d.frames) < 20


def test_decode_audio_from_any_file(sample_clip):
    wave = media.decode_audio(sample_clip, 8000)
    assert wave.dtype == np.int16 and abs(len(wave) - 3 * 8000) < 800
