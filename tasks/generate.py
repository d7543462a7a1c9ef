"""ATVGnet cascade inference: one face image + one speech recording → an mp4 of that face saying it, with the audio
(DESIGN "What it is", step 5). Pure: no Prefect, no MLflow.

Chen, Maddox, Duan, Xu, CVPR 2019; the steps follow the authors' public `code/demo.py`, on this project's store
conventions (DESIGN "The store", "Preprocessing"):

1. `prepare_face`: detect the face and its 68 dlib landmarks exactly as the build does (`FaceTracker.detect` /
   `predict`, the largest face), align it with the build's similarity transform onto `align.TEMPLATE` and warp the
   128×128 crop; the landmarks come back in crop pixels.
2. `prepare_audio`: any file ffmpeg reads (any container, sample rate, channel count) → 16 kHz mono int16, its MFCC
   (`tasks.audio.mfcc`, 100 Hz, c0 = log-energy) and the number of video frames at 25 fps, ceil(S / 640).
3. `predict_landmarks`: AT-net over the whole utterance at once (the demo runs the LSTM over all frames, not in
   windows of 16), example landmarks projected on the checkpoint's PCA, output coefficients multiplied by the boost ω
   (2.2 … 3.0 on components 1–5, `landmark_pca.BOOST`) and reconstructed to crop pixels.
4. `render_frames`: VG-net in chunks of T = 16 frames (its training length), the last chunk padded by repeating
   the last landmarks; `batch` chunks go through one forward pass.
5. `write_video`: H.264 (yuv420p) mp4 at 25 fps from raw RGB frames piped into ffmpeg, muxed with the ORIGINAL audio
   file's first audio stream re-encoded to AAC; the frame count is padded (last frame repeated) or trimmed to
   ceil(S / 640), so the video ends within one frame after the audio.

Every failure a user can cause (missing or unreadable image, no face, unreadable audio, missing model file) raises
`GenerateError` with a message that says what to fix.
"""
from __future__ import annotations

import math
import tempfile
import time
import wave as wavelib
from pathlib import Path
from typing import Sequence, Union

import cv2
import dlib
import ffmpeg
import numpy as np
import torch

from storage.dataset import mfcc_windows
from tasks import align, media, train_vgnet
from tasks import audio as audio_features
from tasks.checkpoint import resolve_device
from tasks.face import FaceTracker
from tasks.landmark_pca import LandmarkPCA, normalise

SAMPLE_RATE = 16000
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
T_VGNET = 16  # frames per VG-net sample (training length)
DETECT_MAX_SIDE = 1280  # images larger than this are detected on a downscaled copy (HOG cost grows with area)

PathLike = Union[str, Path]


class GenerateError(RuntimeError):
    """An input that generation cannot use; `str(exc)` says which and why."""


# ---------------------------------------------------------------------------------------------------------- face


def prepare_face(image_path: PathLike, crop_size: int = 128,
                 tracker: FaceTracker | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The aligned face crop of an image, as the build makes it.

    image_path: any image OpenCV reads (PNG, JPEG, BMP, TIFF, WebP, …; grey or with alpha is fine; EXIF orientation
    applied). The largest face is used.
    Returns (face uint8 (crop, crop, 3) RGB, landmarks float32 (68, 2) in crop pixels (x, y)).
    Raises GenerateError "cannot read image <path>" (missing or undecodable file) or "no face found in <path>".

    Same steps as `tasks.preprocess.preprocess_clip` on a 1-frame clip: HOG detection (coarse to fine), 68-point
    prediction in that box, `align.face_transforms` (temporal smoothing is a no-op on one frame), `align.apply`,
    `align.warp`. One addition: in images whose longer side exceeds 1280 px the detector runs on a copy scaled down
    to 1280 px and its box is scaled back (the HOG detector's cost grows with the area; faces in such photos are
    large); the landmarks are always predicted at full resolution.
    """
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

    transform = align.face_transforms(points, crop_size)  # (1, 2, 3)
    landmarks = align.apply(transform, points)[0]
    face = align.warp(rgb[None], transform, crop_size)[0]
    return face, landmarks.astype(np.float32)


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


# ----------------------------------------------------------------------------------------------------- landmarks


def load_atnet_checkpoint(atnet_ckpt, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, LandmarkPCA]:
    """(AT-net in eval mode, its PCA) from a `tasks.train_atnet` checkpoint path, or an already loaded
    (model, pca) / (model, pca, ckpt) tuple (returned as is). Raises GenerateError when the file is missing or is
    not an AT-net checkpoint."""
    if isinstance(atnet_ckpt, tuple):
        return atnet_ckpt[0], atnet_ckpt[1]
    from tasks.train_atnet import load_atnet

    path = Path(atnet_ckpt)
    if not path.is_file():
        raise GenerateError(f"AT-net checkpoint not found: {path}")
    try:
        model, pca, _ = load_atnet(path, str(resolve_device(device)))
    except Exception as exc:  # noqa: BLE001 - any failure to read it is the user's file
        raise GenerateError(f"cannot load AT-net checkpoint {path}: {exc}") from None
    return model, pca


def _eval_mode(module: torch.nn.Module) -> dict[torch.nn.Module, bool]:
    """Put `module` in eval mode; returns every submodule's previous training flag for `_restore_mode`."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    return modes


def _restore_mode(modes: dict[torch.nn.Module, bool]) -> None:
    for m, training in modes.items():
        m.training = training


def predict_landmarks(atnet_ckpt, example_landmarks_px: np.ndarray, mfcc: np.ndarray, n_frames: int,
                      boost: bool | Sequence[float] = True, device: str | torch.device = "auto") -> np.ndarray:
    """AT-net landmarks for every video frame of an utterance.

    atnet_ckpt: a `tasks.train_atnet` checkpoint path (or a loaded (model, pca) tuple).
    example_landmarks_px: float (68, 2), the still face's landmarks in crop pixels (`prepare_face`).
    mfcc: float32 (A, 13) of the whole utterance (`prepare_audio`); n_frames: video frames to predict.
    boost: True multiplies PCA components 1–5 by ω = (2.2, 2.4, 2.6, 2.8, 3.0) as the public demo does; False
    reconstructs as is; or 6 factors of your own.
    Returns float32 (n_frames, 68, 2) in crop pixels. The LSTM runs once over all n_frames MFCC windows
    (`storage.dataset.mfcc_windows`, edge rows repeated at both ends).
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    dev = resolve_device(device)
    model, pca = load_atnet_checkpoint(atnet_ckpt, dev)
    dev = next(model.parameters()).device
    example = torch.from_numpy(pca.to_pca(np.asarray(example_landmarks_px, np.float32))[None]).to(dev)  # (1, 6)
    windows = torch.from_numpy(mfcc_windows(np.asarray(mfcc, np.float32), np.arange(n_frames))[None]).to(dev)
    modes = _eval_mode(model)
    try:
        with torch.inference_mode():
            coeffs = model(example, windows)[0].float().cpu().numpy()  # (n, 6)
    finally:
        _restore_mode(modes)
    return pca.from_pca(coeffs, boost=boost)


# -------------------------------------------------------------------------------------------------------- frames


def _flat_normalised(landmarks_px: np.ndarray, crop_size: int) -> np.ndarray:
    """(…, 68, 2) crop pixels → (…, 136) float32 in about [-1, 1], x0, y0, x1, y1, … order."""
    landmarks_px = np.asarray(landmarks_px)
    return normalise(landmarks_px, crop_size).reshape(*landmarks_px.shape[:-2], 136).astype(np.float32)


def _model_device(module: torch.nn.Module) -> torch.device:
    p = next(iter(module.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def render_frames(vgnet: torch.nn.Module, example_face: np.ndarray, example_landmarks: np.ndarray,
                  landmarks: np.ndarray, batch: int = 8) -> np.ndarray:
    """VG-net frames for a landmark sequence.

    vgnet: a VG-net (`models.atvgnet.vg_net.VGNet` or any module with its forward: example face (B, 3, H, W) in
    [-1, 1], landmarks (B, T, 136), example landmarks (B, 136) → (frames (B, T, 3, H, W) in [-1, 1], attention));
    it runs in eval mode on its own device (every submodule's training flag is restored afterwards).
    example_face: uint8 (H, W, 3) RGB aligned crop; example_landmarks: float (68, 2) crop pixels;
    landmarks: float (n, 68, 2) crop pixels. Landmarks are normalised with `landmark_pca.normalise` (crop = H).
    batch: chunks of T = 16 frames per forward pass (B); the last chunk is padded by repeating the last landmarks.
    Returns uint8 (n, H, W, 3) RGB.
    """
    example_face = np.asarray(example_face)
    landmarks = np.asarray(landmarks, np.float32)
    if example_face.ndim != 3 or example_face.shape[2] != 3 or example_face.dtype != np.uint8:
        raise ValueError(f"example_face must be uint8 (H, W, 3), got {example_face.dtype} {example_face.shape}")
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2) or len(landmarks) == 0:
        raise ValueError(f"landmarks must be (n >= 1, 68, 2), got {landmarks.shape}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    n, (h, w) = len(landmarks), example_face.shape[:2]
    T, crop = T_VGNET, h
    n_chunks = math.ceil(n / T)
    padded = np.concatenate([landmarks, np.repeat(landmarks[-1:], n_chunks * T - n, 0)])
    chunks = _flat_normalised(padded, crop).reshape(n_chunks, T, 136)
    dev = _model_device(vgnet)
    face = torch.from_numpy(example_face).to(dev).permute(2, 0, 1).float().div(127.5).sub(1.0)[None]  # (1, 3, H, W)
    example = torch.from_numpy(_flat_normalised(example_landmarks, crop)).to(dev)[None]  # (1, 136)

    out = np.empty((n_chunks * T, h, w, 3), np.uint8)
    modes = _eval_mode(vgnet)
    try:
        with torch.inference_mode():
            for start in range(0, n_chunks, batch):
                lm = torch.from_numpy(chunks[start : start + batch]).to(dev)  # (b, T, 136)
                b = lm.shape[0]
                frames, _ = vgnet(face.expand(b, -1, -1, -1), lm, example.expand(b, -1))  # (b, T, 3, H, W)
                pixels = frames.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
                out[start * T : (start + b) * T] = pixels.permute(0, 1, 3, 4, 2).reshape(b * T, h, w, 3).cpu().numpy()
    finally:
        _restore_mode(modes)
    return out[:n]


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


def load_vgnet(vgnet_ckpt_or_module, device: str | torch.device = "cpu") -> torch.nn.Module:
    """A VG-net on `device`, in eval mode when read from a file: an nn.Module is moved there and returned; a path is
    a `tasks.train_vgnet` checkpoint (or a model directory's vgnet.pt), read with `torch.load(weights_only=True)`.
    Raises GenerateError when the file is missing or unusable."""
    dev = resolve_device(device)
    if isinstance(vgnet_ckpt_or_module, torch.nn.Module):
        return vgnet_ckpt_or_module.to(dev)
    path = Path(vgnet_ckpt_or_module)
    if not path.is_file():
        raise GenerateError(f"VG-net checkpoint not found: {path}")
    try:
        model, _ = train_vgnet.load_vgnet(path, str(dev))
    except Exception as exc:  # noqa: BLE001 - any failure to read it is the user's file
        raise GenerateError(f"cannot load VG-net checkpoint {path}: {exc}") from None
    return model


def generate(image: PathLike, audio: PathLike, out: PathLike, atnet_ckpt, vgnet_ckpt_or_module,
             device: str = "auto", boost: bool = True, batch: int = 8,
             tracker: FaceTracker | None = None) -> dict:
    """Face image + speech → `out` (mp4: the face saying it, 25 fps, 128×128, with the original audio).

    atnet_ckpt: a `tasks.train_atnet` checkpoint path (or a loaded (model, pca) tuple); vgnet_ckpt_or_module: a
    VG-net checkpoint path or module. device: "auto" (cuda when available), "cpu", "cuda[:i]".
    Returns {"frames": video frames written, "seconds": video duration (frames / fps), "fps": 25,
    "elapsed_s": wall time of the whole call, "out": the mp4 path}.
    Raises GenerateError for a missing model file, an unreadable image or audio, or an image without a face —
    all checked before any model runs.
    """
    t0 = time.perf_counter()
    dev = resolve_device(device)
    for name, ckpt in (("AT-net", atnet_ckpt), ("VG-net", vgnet_ckpt_or_module)):
        if isinstance(ckpt, (str, Path)) and not Path(ckpt).is_file():
            raise GenerateError(f"{name} checkpoint not found: {ckpt}")
    atnet = load_atnet_checkpoint(atnet_ckpt, dev)
    face, face_landmarks = prepare_face(image, crop_size=atnet[1].crop_size, tracker=tracker)
    wave, mfcc, n_frames = prepare_audio(audio)
    vgnet = load_vgnet(vgnet_ckpt_or_module, dev)
    size = getattr(getattr(vgnet, "cfg", None), "image_size", face.shape[0])
    if size != face.shape[0]:
        raise GenerateError(f"the VG-net renders {size}-px faces but the AT-net checkpoint's PCA is for "
                            f"{face.shape[0]}-px crops: use models trained on the same store")
    landmarks = predict_landmarks(atnet, face_landmarks, mfcc, n_frames, boost=boost, device=dev)
    frames = render_frames(vgnet, face, face_landmarks, landmarks, batch=batch)
    write_video(frames, wave, out, FPS, audio_path=audio)
    return {"frames": n_frames, "seconds": n_frames / FPS, "fps": FPS, "elapsed_s": time.perf_counter() - t0,
            "out": Path(out)}
