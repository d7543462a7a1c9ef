"""AV offset and confidence by the SyncNet protocol (Chung & Zisserman 2016, "determining the lip-sync error";
public code joonson/syncnet_python `SyncNetInstance.evaluate`), with a trained SyncNet (`models.syncnet.stages`) or the
official `syncnet_v2.model`.

Protocol, for a clip of N frames at 25 fps and its MFCC (A, 13) at 100 Hz:
  1. windows: video window t = frames t .. t+4, audio window t = MFCC rows 4t .. 4t+20 (0.2 s each); every t whose
     video and audio windows both fit is used (n = min(N - 4, (A - 20) // 4 + 1) windows; syncnet_python stops one
     window earlier);
  2. embed every video window and every audio window;
  3. for each audio shift s in -max_shift .. +max_shift frames (±15 = ±0.6 s), the mean over t of the Euclidean
     distance between video window t and audio window t + s;
  4. offset = -(the s of the smallest mean distance), confidence = median - min of the mean-distance curve.

Sign convention -- the one syncnet_python's demo reports (its `offset = vshift - argmin`): a positive offset means
the audio LEADS the video (the sound of video frame t is at audio frame t - offset, i.e. it comes early); a negative
offset means the audio LAGS (comes late). Delaying a clip's audio by k frames lowers the measured offset by k
(`delay_mfcc` below makes such a clip). `SyncResult.distances[j]` is the mean distance at audio shift
s = j - max_shift, the order of syncnet_python's `mdist`, so offset = max_shift - argmin.

Audio windows of shifted positions that fall outside the clip: `pad="zeros"` (default) does what syncnet_python
does, comparing against a zero embedding there (its `calc_pdist` pads the audio features with zeros), so numbers
compare with published ones; `pad="valid"` averages each shift over the windows whose shifted audio exists (and may
use audio windows past the last video window).

Which frames to pass: the crop the model was trained on, `model.cfg.crop` -- the store's `mouth` crops for the
project's "small" models; for syncnet_v2 a face crop (the store's `face`, resized to 224x224 by the model;
syncnet_python feeds a face-track crop with extra room below the chin, so absolute numbers from the store's aligned
crops may differ from the official pipeline's).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from models.syncnet.syncnet import SyncNet, SyncNetConfig, syncnet_v2_from_state_dict
from models.syncnet.data import SYNC_FRAMES, SYNC_MFCC_ROWS, sync_audio_windows
from models.weights import TRAIN_FORMAT, WEIGHTS_FORMAT, load_module, read_weights
from storage.dataset import MFCC_PER_FRAME
from tasks.checkpoint import resolve_device

PADS = ("zeros", "valid")


class SyncResult(NamedTuple):
    """offset: frames (syncnet_python's sign: positive = audio leads video); confidence: median - min of the
    distance curve; distances: float64 (2 * max_shift + 1,), mean distance at audio shift s = index - max_shift."""

    offset: int
    confidence: float
    distances: np.ndarray

    @property
    def max_shift(self) -> int:
        return (len(self.distances) - 1) // 2

    @property
    def min_distance(self) -> float:
        """The mean distance at the offset (syncnet_python's "Min dist")."""
        return float(self.distances.min())

    @property
    def shifts(self) -> np.ndarray:
        """Audio shift in frames of each entry of `distances` (-max_shift .. max_shift)."""
        return np.arange(-self.max_shift, self.max_shift + 1)


def delay_mfcc(mfcc: np.ndarray, k: int) -> np.ndarray:
    """The MFCC of the same clip with its audio delayed by k video frames (4k rows; k < 0 advances it): row r of the
    result is row r - 4k of the input, rows from before the start or after the end repeat the edge row. Same shape.
    With an in-sync clip, `av_offset` on the result should report offset -k."""
    rows = np.clip(np.arange(len(mfcc)) - MFCC_PER_FRAME * int(k), 0, len(mfcc) - 1)
    return np.ascontiguousarray(mfcc[rows])


@torch.no_grad()
def embed_clip(model: SyncNet, frames: np.ndarray, mfcc: np.ndarray, batch_size: int = 64,
               n_audio: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(video embeddings (N - 4, E), audio embeddings (n_audio, E)) of every window of a clip, on the CPU.
    frames uint8 (N, H, W, 3) RGB; mfcc float32 (A, 13); n_audio defaults to every audio window that fits."""
    device = next(model.parameters()).device
    n_video = len(frames) - SYNC_FRAMES + 1
    n_audio = sync_audio_windows(len(mfcc)) if n_audio is None else n_audio
    frames_t = torch.from_numpy(np.ascontiguousarray(frames))
    mfcc_t = torch.from_numpy(np.ascontiguousarray(mfcc, dtype=np.float32))
    video, audio = [], []
    for b in range(0, n_video, batch_size):
        ts = torch.arange(b, min(n_video, b + batch_size))
        clips = frames_t[ts[:, None] + torch.arange(SYNC_FRAMES)[None, :]]  # (b, 5, H, W, 3)
        video.append(model.embed_video(clips.to(device)).float().cpu())
    for b in range(0, n_audio, batch_size):
        ts = torch.arange(b, min(n_audio, b + batch_size))
        rows = mfcc_t[MFCC_PER_FRAME * ts[:, None] + torch.arange(SYNC_MFCC_ROWS)[None, :]]  # (b, 20, 13)
        audio.append(model.embed_audio(rows.transpose(1, 2).to(device)).float().cpu())
    return torch.cat(video), torch.cat(audio)


def av_offset(model: SyncNet, frames: np.ndarray, mfcc: np.ndarray, max_shift: int = 15, *, pad: str = "zeros",
              batch_size: int = 64) -> SyncResult:
    """AV offset, confidence and the mean-distance curve of one clip by the SyncNet protocol (module docstring).

    model: a SyncNet (eval mode is set here and restored after). frames: uint8 (N, H, W, 3) RGB crops of the kind
    `model.cfg.crop` names, 25 fps. mfcc: float32 (A, 13), 100 Hz, the store's scale (c0 = log-energy of a
    waveform in [-1, 1]); the model adds its own c0 offset. max_shift: shifts -max_shift .. +max_shift frames.
    pad: "zeros" (syncnet_python) or "valid".
    Raises ValueError when the clip has no complete window, pad is unknown or max_shift < 0.
    """
    if pad not in PADS or max_shift < 0:
        raise ValueError(f"need pad in {PADS} and max_shift >= 0, got {pad!r}, {max_shift}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    if mfcc.ndim != 2 or mfcc.shape[1] != model.cfg.n_mfcc:
        raise ValueError(f"mfcc must be (A, {model.cfg.n_mfcc}), got {mfcc.shape}")
    n = min(len(frames) - SYNC_FRAMES + 1, sync_audio_windows(len(mfcc)))
    if n < 1:
        raise ValueError(f"no complete window in {len(frames)} frames and {len(mfcc)} MFCC rows")
    was_training = model.training
    model.eval()
    try:
        n_audio = n if pad == "zeros" else sync_audio_windows(len(mfcc))
        video, audio = embed_clip(model, frames[: n + SYNC_FRAMES - 1], mfcc, batch_size, n_audio)
    finally:
        model.train(was_training)
    video, audio = video.double(), audio.double()
    distances = np.empty(2 * max_shift + 1)
    t = torch.arange(n)
    for j, s in enumerate(range(-max_shift, max_shift + 1)):
        a = t + s
        inside = (a >= 0) & (a < len(audio))
        d = torch.zeros(n, dtype=torch.float64)
        d[inside] = torch.linalg.vector_norm(video[inside] - audio[a[inside]], dim=1)
        if pad == "zeros":  # syncnet_python: distance to a zero audio feature outside the clip
            d[~inside] = torch.linalg.vector_norm(video[~inside], dim=1)
            distances[j] = float(d.mean())
        else:
            distances[j] = float(d[inside].mean()) if inside.any() else np.nan
    best = int(np.nanargmin(distances))
    return SyncResult(offset=max_shift - best, confidence=float(np.nanmedian(distances) - distances[best]),
                      distances=distances)


def load_sync_model(path: Path | str, device: str = "auto") -> SyncNet:
    """A SyncNet in eval mode on `device` from a SyncNet training checkpoint or model-directory file
    (`models.weights`) or the official `syncnet_v2.model` state dict, read with `torch.load(weights_only=True)`.
    Raises ValueError when the file is neither (e.g. another talkface checkpoint, or a pickled module)."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not loadable as a weights-only checkpoint or state dict ({e})") from e
    if isinstance(state, dict) and state.get("format") in (TRAIN_FORMAT, WEIGHTS_FORMAT):
        state = read_weights(path, "syncnet", "syncnet")
        model = SyncNet(SyncNetConfig.from_dict(state["config"]["model"]))
        load_module(model, state["modules"]["syncnet"], path, "SyncNet")
    elif isinstance(state, dict) and "format" in state:
        raise ValueError(f"{path}: a {state['format']!r} checkpoint, not a SyncNet")
    else:
        model = syncnet_v2_from_state_dict(state, str(path))
    return model.eval().to(resolve_device(device))
