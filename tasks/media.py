"""Decoding with ffmpeg (through ffmpeg-python): one ffmpeg process per clip decodes its video at 25 fps RGB
and its audio at 16 kHz mono, and its log gives the container's frame rate and duration (no separate ffprobe
process). Failures become `MediaError` with a reason a person can act on, never a crash of the build.

The frame size is read from the log: the rawvideo output's stream line (the size after autorotation), else the
input's. ffmpeg 6.1 and newer decode, filter and mux in threads of their own that share one log, and the output's
stream line is printed in pieces, so a decoder's warning (a damaged frame of a truncated file) can land inside it;
the input's line is printed from the main thread before any frame is decoded. A size is used only if the bytes
are whole frames of it.

Process start-up dominates for short clips: Debian's dynamically linked ffmpeg needs about 0.13 s to decode a
3 s GRID clip, of which about 0.1 s is loading its shared libraries; the static build that the imageio-ffmpeg
package ships needs 0.05 s. `ffmpeg_exe()` therefore prefers it, and `$TALKFACE_FFMPEG` overrides both.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ffmpeg
import numpy as np


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: $TALKFACE_FFMPEG, else imageio-ffmpeg's static build, else `ffmpeg` on PATH.
    Raises FileNotFoundError when there is none."""
    if exe := os.environ.get("TALKFACE_FFMPEG"):
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        pass
    if exe := shutil.which("ffmpeg"):
        return exe
    raise FileNotFoundError("ffmpeg not found: install it (apt-get install ffmpeg) or pip install imageio-ffmpeg")


class MediaError(RuntimeError):
    """A source that cannot be decoded as a talking-face clip; `str(exc)` is the manifest's `reason`."""


@dataclass
class Decoded:
    """A decoded clip: frames uint8 (N, H, W, 3) RGB at the requested rate, audio int16 (S,) mono at the
    requested rate, and what the container declares: frame rate (frames/s, 0 if unknown) and duration (s)."""

    frames: np.ndarray
    audio: np.ndarray
    fps_source: float
    duration_s: float


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_INPUT_VIDEO = re.compile(r"Stream #0:\d+.*?: Video: .*")
_OUTPUT_VIDEO = re.compile(r"Output #0, rawvideo.*?\n\s+Stream #0:0: Video: .*?, (\d+)x(\d+)", re.S)
_SIZE = re.compile(r", (\d{1,5})x(\d{1,5})\b")
_FPS = re.compile(r"(\d+(?:\.\d+)?) (?:fps|tbr)")


def _last_line(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip() and not ln.lstrip().startswith(("frame=", "size="))]
    return lines[-1][:200] if lines else "ffmpeg failed without a message"


def _frame_size(log: str, n_bytes: int) -> tuple[int, int] | None:
    """(width, height) in pixels of the rgb24 frames in `n_bytes` of output: the rawvideo output's stream line,
    else the input's video stream line, whichever is whole frames of it; None if neither is."""
    sizes = []
    if m := _OUTPUT_VIDEO.search(log):
        sizes.append((int(m.group(1)), int(m.group(2))))
    if (v := _INPUT_VIDEO.search(log.split("Stream mapping")[0])) and (m := _SIZE.search(v.group(0))):
        sizes.append((int(m.group(1)), int(m.group(2))))
    return next((wh for wh in sizes if n_bytes % (wh[0] * wh[1] * 3) == 0), None)


def _container_facts(log: str) -> tuple[float, float]:
    """(frame rate, duration in s) of input 0 as ffmpeg's log states them; 0 where it states none."""
    duration = 0.0
    if m := _DURATION.search(log):
        h, mnt, s = m.groups()
        duration = int(h) * 3600 + int(mnt) * 60 + float(s)
    fps = 0.0
    if (v := _INPUT_VIDEO.search(log)) and (f := _FPS.search(v.group(0))):
        fps = float(f.group(1))
    return fps, duration


def decode(path: Path, fps: float = 25.0, sample_rate: int = 16000) -> Decoded:
    """Decode a clip's video (resampled to `fps` by ffmpeg's fps filter: frames dropped or repeated on their
    timestamps, so audio stays in sync) and its audio (downmixed to mono, resampled to `sample_rate` Hz).

    Raises MediaError: "decode error: …" (empty, unreadable or damaged file, or no frame decoded),
    "video stream missing", "audio stream missing", "audio stream empty".
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError("decode error: file is empty (0 bytes)")
    with tempfile.TemporaryDirectory(prefix="talkface-audio-") as tmp:
        wav = Path(tmp) / "audio.s16le"
        source = ffmpeg.input(str(path))
        video = source.video.filter("fps", fps=fps).output("pipe:", format="rawvideo", pix_fmt="rgb24")
        audio = source.audio.output(str(wav), format="s16le", acodec="pcm_s16le", ac=1, ar=sample_rate)
        try:
            out, err = (
                ffmpeg.merge_outputs(video, audio)
                .global_args("-hide_banner", "-nostdin", "-threads", "1")
                .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True, overwrite_output=True)
            )
        except ffmpeg.Error as exc:
            log = (exc.stderr or b"").decode("utf-8", "replace")
            if "Stream #0" in log and not _INPUT_VIDEO.search(log):
                raise MediaError("video stream missing") from None
            if _INPUT_VIDEO.search(log) and ": Audio: " not in log.split("Stream mapping")[0]:
                raise MediaError("audio stream missing") from None
            raise MediaError(f"decode error: {_last_line(log)}") from None
        samples = np.fromfile(wav, np.int16) if wav.exists() else np.zeros(0, np.int16)
    log = err.decode("utf-8", "replace")
    if not out:
        raise MediaError(f"decode error: no video frame could be decoded ({_last_line(log)})")
    if (size := _frame_size(log, len(out))) is None:
        raise MediaError(f"decode error: {len(out)} bytes of video are not whole frames of the size ffmpeg states")
    width, height = size
    n = len(out) // (width * height * 3)
    if samples.size == 0:
        raise MediaError("audio stream empty: no sample could be decoded")
    frames = np.frombuffer(out, np.uint8, count=n * width * height * 3).reshape(n, height, width, 3)
    fps_source, duration = _container_facts(log)
    return Decoded(frames, samples, fps_source, duration)


def decode_audio(path: Path, sample_rate: int = 16000) -> np.ndarray:
    """Waveform int16 (S,) mono at `sample_rate` Hz from any file ffmpeg reads (video or audio).
    Raises MediaError when there is no audio stream or nothing decodes."""
    try:
        out, _ = (
            ffmpeg.input(str(path))
            .audio.output("pipe:", format="s16le", acodec="pcm_s16le", ac=1, ar=sample_rate)
            .global_args("-hide_banner", "-nostdin")
            .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as exc:
        log = (exc.stderr or b"").decode("utf-8", "replace")
        if "matches no streams" in log or "does not contain any stream" in log:
            raise MediaError("audio stream missing") from None
        raise MediaError(f"audio decode error: {_last_line(log)}") from None
    if not out:
        raise MediaError("audio stream empty: no sample could be decoded")
    return np.frombuffer(out, np.int16).copy()
