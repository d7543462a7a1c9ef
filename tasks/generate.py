"""Inference for any registered system: one photo + one speech recording → an mp4 of that face saying it, with the
audio (DESIGN "What it is", step 5). Pure: no Prefect, no MLflow.

1. `prepare_photo`: detect the face and its 68 dlib landmarks exactly as the build does (`FaceTracker.detect` /
   `predict`, the largest face) and cut the system's crop (`Generator.crop`: face, mouth or face_sda,
   `storage.crops`) with the build's alignment (`align.crop_transforms`); the landmarks come back in crop pixels,
   with the transform.
2. `prepare_audio`: any file ffmpeg reads (any container, sample rate, channel count) → 16 kHz mono int16, its MFCC
   (`storage.audio.mfcc`, 100 Hz, c0 = log-energy) and the number of video frames at 25 fps, ceil(S / 640).
3. the system's `Generator` (`models.system`): crop, landmarks, audio → uint8 frames of the crop.
4. `paste_back` (`storage.paste`): each frame warped back into the photo through the inverse of the crop transform
   and blended with a feathered mask, so the video is the user's photo at its own resolution with the face talking
   (as Wav2Lip-style tools deliver); `crop_only` keeps the crop itself.
5. `write_video`: H.264 (yuv420p) mp4 at 25 fps from raw RGB frames piped into ffmpeg, muxed with the ORIGINAL audio
   file's first audio stream re-encoded to AAC; the frame count is padded (last frame repeated) or trimmed to
   ceil(S / 640), so the video ends within one frame after the audio.

Every failure a user can cause (missing or unreadable image, no face, unreadable audio) raises `GenerateError` with a
message that says what to fix.
"""
from __future__ import annotations

import math
import tempfile
import time
import wave as wavelib
from pathlib import Path
from typing import NamedTuple, Union

import cv2
import dlib
import ffmpeg
import numpy as np

from storage import audio as audio_features
from storage.crops import CROPS, FACE, Crop
from storage.paste import paste_back
from tasks import align, media
from tasks.face import FaceTracker

SAMPLE_RATE = 16000
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
DETECT_MAX_SIDE = 1280  # images larger than this are detected on a downscaled copy (HOG cost grows with area)

PathLike = Union[str, Path]


class GenerateError(RuntimeError):
    """An input that generation cannot use; `str(exc)` says which and why."""


# ---------------------------------------------------------------------------------------------------------- face


class Photo(NamedTuple):
    """A photo prepared for a generator: rgb uint8 (H, W, 3) the photo; crop uint8 (h, w, 3) its aligned crop;
    landmarks float32 (68, 2) in crop pixels (x, y); transform float64 (2, 3), photo pixels -> crop pixels."""

    rgb: np.ndarray
    crop: np.ndarray
    landmarks: np.ndarray
    transform: np.ndarray


def prepare_photo(image_path: PathLike, crop: Crop = FACE, tracker: FaceTracker | None = None) -> Photo:
    """The photo and its aligned crop, as the build makes the store's crop of that name.

    image_path: any image OpenCV reads (PNG, JPEG, BMP, TIFF, WebP, …; grey or with alpha is fine; EXIF orientation
    applied). The largest face is used. crop: the generator's crop, one of the store's (`storage.crops.CROPS`).
    Returns a `Photo`. Raises GenerateError "cannot read image <path>" (missing or undecodable file) or "no face
    found in <path>", ValueError for a crop the store does not define.

    Same steps as `tasks.preprocess.preprocess_clip` on a 1-frame clip: HOG detection (coarse to fine), 68-point
    prediction in that box, `align.crop_transforms` (temporal smoothing is a no-op on one frame), `align.apply`,
    `align.warp`. One addition: in images whose longer side exceeds 1280 px the detector runs on a copy scaled down
    to 1280 px and its box is scaled back (the HOG detector's cost grows with the area; faces in such photos are
    large); the landmarks are always predicted at full resolution.
    """
    if crop.field not in CROPS:
        raise ValueError(f"no crop {crop.field!r}; the store's crops are {', '.join(CROPS)}")
    path = Path(image_path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if image is None:
        raise GenerateError(f"cannot read image {path}")
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    tracker = tracker or FaceTracker()

    scale = min(1.0, DETECT_MAX_SIDE / max(gray.shape))
    small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    box = tracker.detect(small)
    if box is None:
        raise GenerateError(f"no face found in {path}")
    if scale != 1.0:
        box = dlib.rectangle(*(int(round(v / scale)) for v in (box.left(), box.top(), box.right(), box.bottom())))
    points = tracker.predict(gray, box)[None]  # (1, 68, 2) source pixels

    transform = align.crop_transforms(crop.field, crop.size, points)  # (1, 2, 3)
    landmarks = align.apply(transform, points)[0]
    cut = align.warp(rgb[None], transform, crop.size)[0]
    return Photo(rgb, cut, landmarks.astype(np.float32), transform[0].astype(np.float64))


# --------------------------------------------------------------------------------------------------------- audio


def n_video_frames(n_samples: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """Video frames that cover `n_samples` audio samples: ceil(S / (sample_rate / fps)) (640 samples at 16 kHz)."""
    return max(1, math.ceil(n_samples * fps / sample_rate))


def prepare_audio(audio_path: PathLike) -> tuple[np.ndarray, np.ndarray, int]:
    """Speech from any file ffmpeg reads (audio or video container; any rate, mono or multichannel, downmixed).

    Returns (wave int16 (S,) 16 kHz mono, mfcc float32 (A, 13) at 100 Hz with c0 = log-energy, n_frames =
    ceil(S / 640) video frames at 25 fps).
    Raises GenerateError when the file is missing, has no audio stream, or nothing decodes.
    """
    path = Path(audio_path)
    if not path.is_file():
        raise GenerateError(f"cannot read audio {path}: file not found")
    try:
        wave = media.decode_audio(path, SAMPLE_RATE)
    except media.MediaError as exc:
        raise GenerateError(f"cannot read audio {path}: {exc}") from None
    return wave, audio_features.mfcc(wave, SAMPLE_RATE), n_video_frames(len(wave))


# --------------------------------------------------------------------------------------------------------- video


def _write_wav(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    with wavelib.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(np.asarray(wave, np.int16).tobytes())


def write_video(frames: np.ndarray, wave: np.ndarray, out_path: PathLike, fps: int = FPS,
                audio_path: PathLike | None = None, sample_rate: int = SAMPLE_RATE, crf: int = 18) -> Path:
    """Write an H.264 (yuv420p) mp4 at `fps` with an AAC audio track.

    frames: uint8 (n, H, W, 3) RGB, piped raw into ffmpeg's stdin (odd sizes are padded by one black pixel, as
    yuv420p needs even sides). wave: int16 (S,) mono at `sample_rate`, the decoded audio; it fixes the length:
    the video gets exactly ceil(S · fps / sample_rate) frames (the last frame repeated, or extra frames dropped),
    so it ends within one frame after the audio.
    audio_path: the ORIGINAL audio file; its first audio stream (original rate and channels) is re-encoded to AAC.
    Without it, `wave` itself is encoded.
    Written to a hidden temporary name beside `out_path` and renamed when complete.
    Returns out_path. Raises GenerateError when ffmpeg fails.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be uint8 (n >= 1, H, W, 3), got {frames.dtype} {frames.shape}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    n = n_video_frames(len(wave), sample_rate, fps)
    if len(frames) < n:
        frames = np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), 0)])
    frames = np.ascontiguousarray(frames[:n])
    h, w = frames.shape[1:3]

    with tempfile.TemporaryDirectory(prefix="talkface-generate-") as tmp:
        if audio_path is None:
            audio_path = Path(tmp) / "audio.wav"
            _write_wav(audio_path, wave, sample_rate)
        video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", framerate=fps)
        if h % 2 or w % 2:
            video = video.filter("pad", "ceil(iw/2)*2", "ceil(ih/2)*2")
        sound = ffmpeg.input(str(audio_path))["a:0"]
        partial = out_path.with_name(f".{out_path.stem}.partial{out_path.suffix}")  # renamed when complete
        try:
            (
                ffmpeg.output(video, sound, str(partial), vcodec="libx264", pix_fmt="yuv420p", r=fps, crf=crf,
                              preset="medium", acodec="aac", audio_bitrate="128k", movflags="+faststart",
                              f="mp4")
                .global_args("-hide_banner", "-nostdin")
                .run(cmd=media.ffmpeg_exe(), input=frames.tobytes(), capture_stdout=True, capture_stderr=True,
                     overwrite_output=True)
            )
        except ffmpeg.Error as exc:
            partial.unlink(missing_ok=True)
            lines = [ln.strip() for ln in (exc.stderr or b"").decode("utf-8", "replace").splitlines() if ln.strip()]
            raise GenerateError(f"ffmpeg could not write {out_path}: {lines[-1] if lines else exc}") from None
        partial.replace(out_path)
    return out_path


# ----------------------------------------------------------------------------------------------------- pipeline


def generate(image: PathLike, audio: PathLike, out: PathLike, generator, crop_only: bool = False,
             tracker: FaceTracker | None = None) -> dict:
    """Photo + speech → `out` (mp4: the face saying it, 25 fps, with the original audio).

    generator: a loaded `models.system.Generator` (`tasks.model_dir.load_generator`). crop_only: write the
    generator's crop (e.g. 128×128) instead of the photo with the crop pasted back (`paste_back`).
    Returns {"frames": video frames written, "seconds": video duration (frames / fps), "fps": 25, "size": (W, H),
    "elapsed_s": wall time of the whole call, "out": the mp4 path}.
    Raises GenerateError for an unreadable image or audio, or an image without a face — all checked before the
    model runs.
    """
    t0 = time.perf_counter()
    photo = prepare_photo(image, generator.crop, tracker=tracker)
    wave, _, n_frames = prepare_audio(audio)
    frames = generator(photo.crop, photo.landmarks, wave, n_frames)
    if not crop_only:
        frames = paste_back(photo.rgb, frames, photo.transform)
    write_video(frames, wave, out, FPS, audio_path=audio)
    return {"frames": n_frames, "seconds": n_frames / FPS, "fps": FPS, "size": (frames.shape[2], frames.shape[1]),
            "elapsed_s": time.perf_counter() - t0, "out": Path(out)}
