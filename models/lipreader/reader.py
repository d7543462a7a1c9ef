"""The trained lip reader for inference: aligned 128×128 face crops -> GRID transcripts, for WER of real and generated
video (LipNet, Assael et al. 2016; shared/specs/vougioukas2019-sda.md §8).

`LipReader.load` reads the "lipreader" stage's training checkpoint or its model-directory file weights-only
(`models.weights.read_weights`): the network from `config["model"]`, the weights from `modules["lipnet"]` and the
fixed mouth box from `extra["mouth_box"]` (face-crop pixels, computed on the training store's train split). `read`
cuts that box from every frame — the same box for ground-truth and generated faces — and returns the greedy CTC
decoding and its GRID-grammar snapped form (`text.snap_to_grammar`). Pure torch and numpy.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch

from models.lipreader.data import MouthBox, mouth_frames
from models.lipreader.network import LipNet, LipReaderConfig
from models.lipreader.text import greedy_decode, snap_to_grammar
from models.weights import load_module, read_weights

SYSTEM, STAGE = "lipreader", "lipreader"
FACE_SIZE = (128, 128)  # the store's `face` crop the box is cut from (checkpoints say theirs: extra["face_size"])


class Transcript(NamedTuple):
    """greedy: best-path CTC decoding ("greedy"); snapped: its words snapped to the GRID grammar
    ("greedy+grammar")."""

    greedy: str
    snapped: str


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class LipReader:
    """A trained LipNet with its mouth box. `read(faces)` -> Transcript; `read_batch([faces, ...])` for several clips.

    model: the network (put in eval mode here); box: the mouth box (y0, x0, h, w) in face-crop pixels;
    face_size: (H, W) of the face crops it reads (the training store's `face`). batch: clips per forward pass in
    `read_batch`. Raises ValueError when the box does not lie inside the face crop.
    """

    def __init__(self, model: LipNet, box: MouthBox, face_size: tuple[int, int] = FACE_SIZE, batch: int = 16):
        self.model, self.box, self.batch = model.eval(), MouthBox(*box), batch
        self.face_size = tuple(int(v) for v in face_size)
        if self.box.y0 < 0 or self.box.x0 < 0 or self.box.y0 + self.box.h > self.face_size[0] \
                or self.box.x0 + self.box.w > self.face_size[1] or batch < 1:
            raise ValueError(f"mouth box {self.box} lies outside the {self.face_size} face crop (or batch {batch} < 1)")

    @classmethod
    def load(cls, path: Path | str, device: str | torch.device = "cpu") -> "LipReader":
        """From a "lipreader" training checkpoint (`<out>/lipreader-stepNNNNNN.pt`) or model-directory file
        (`lipreader.pt`; a model directory itself is accepted), read weights-only onto `device` ("auto": cuda when
        available). Raises FileNotFoundError when the file is missing, ValueError when it is not a talkface weights
        file, holds another system's or stage's weights, or lacks the mouth box."""
        path = Path(path)
        if path.is_dir():
            path = path / f"{STAGE}.pt"
        state = read_weights(path, SYSTEM, STAGE)
        box = state.get("extra", {}).get("mouth_box")
        if box is None or len(box) != 4:
            raise ValueError(f"{path}: a lipreader checkpoint without its mouth box (extra['mouth_box'])")
        model = LipNet(LipReaderConfig.from_dict(state["config"]["model"]))
        load_module(model, state["modules"]["lipnet"], path, "lip reader")
        face_size = state["extra"].get("face_size", FACE_SIZE)
        return cls(model.to(_device(device)), MouthBox(*(int(v) for v in box)), face_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _check(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        H, W = self.face_size
        if faces.dtype != np.uint8 or faces.ndim != 4 or faces.shape[1:] != (H, W, 3) or len(faces) == 0:
            raise ValueError(f"faces must be uint8 (N >= 1, {H}, {W}, 3) aligned face crops, got {faces.dtype} "
                             f"{faces.shape}")
        return faces

    @torch.no_grad()
    def log_probs(self, clips: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probabilities float32 (T, B, 28) on the CPU, lengths int64 (B,)) of B clips of aligned faces, each
        uint8 (N_b, 128, 128, 3) RGB, T = the longest N_b (rows past a clip's length are padding). One forward pass:
        see `read_batch` for bounded memory."""
        clips = [self._check(f) for f in clips]
        cfg = self.model.cfg
        lengths = torch.tensor([len(f) for f in clips])
        video = torch.zeros(len(clips), int(lengths.max()), cfg.channels, *cfg.size)
        for b, faces in enumerate(clips):
            video[b, : len(faces)] = mouth_frames(self.box.cut(faces), cfg.size, cfg.channels)
        out = self.model(video.to(self.device), lengths.to(self.device))
        return out.float().cpu(), lengths

    def read_batch(self, clips: Sequence[np.ndarray]) -> list[Transcript]:
        """A Transcript per clip, each clip uint8 (N, 128, 128, 3) aligned RGB face crops at 25 fps; `batch` clips
        per forward pass. Raises ValueError on a wrongly shaped or typed clip."""
        out = []
        for start in range(0, len(clips), self.batch):
            log_probs, lengths = self.log_probs(clips[start : start + self.batch])
            out += [Transcript(g, snap_to_grammar(g)) for g in greedy_decode(log_probs, lengths)]
        return out

    def read(self, faces: np.ndarray) -> Transcript:
        """The Transcript of one clip: faces uint8 (N, 128, 128, 3) aligned RGB face crops (the store's `face`, or a
        generator's frames in that crop) at 25 fps. Raises ValueError on another shape or dtype."""
        return self.read_batch([faces])[0]
