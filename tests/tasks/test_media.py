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


# ffmpeg >= 6.1 logs from several threads; a damaged frame's warning can split the output's stream line (CI, 2026-12)
_INTERLEAVED = """Input #0, mpeg, from 'cut.mpg':
  Duration: 00:00:00.22, start: 0.000000, bitrate: 1090 kb/s
  Stream #0:0[0x1e0]: Video: mpeg1video, yuv420p(tv, progressive), 360x288 [SAR 1:1 DAR 5:4], 25 fps, 50 tbr, 90k tbn
  Stream #0:1[0x1c0]: Audio: mp2, 44100 Hz, stereo, s16p, 224 kb/s
Stream mapping:
  Stream #0:0 (mpeg1video) -> fps:default
Output #0, rawvideo, to 'pipe:':
  Metadata:
    encoder         : Lavf63.1.102
  Stream #0:0[mpeg1video @ 0x5645e5f77e80] ac-tex damaged at 2 17
: Video: rawvideo (RGB[24] / 0x18424752), rgb24(pc, gbr/unknown/unknown, progressive), 360x288 [SAR 1:1 DAR 5:4]
"""


def test_frame_size_survives_a_warning_inside_the_output_stream_line():
    frame = 360 * 288 * 3
    assert media._frame_size(_INTERLEAVED, 5 * frame) == (360, 288)
    rotated = _INTERLEAVED.replace("Stream #0:0[mpeg1video @ 0x5645e5f77e80] ac-tex damaged at 2 17\n:", "Stream #0:0:")
    rotated = rotated.replace("progressive), 360x288 [SAR 1:1 DAR 5:4]\n", "progressive), 288x360 [SAR 1:1 DAR 4:5]\n")
    assert media._frame_size(rotated, 5 * frame) == (288, 360)  # the output's size (after autorotation) first
    assert media._frame_size(_INTERLEAVED, 5 * frame + 7) is None  # bytes that are no whole frames of either size


def test_decode_audio_from_any_file(sample_clip):
    wave = media.decode_audio(sample_clip, 8000)
    assert wave.dtype == np.int16 and abs(len(wave) - 3 * 8000) < 800
