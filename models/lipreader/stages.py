"""The lip reader's one training stage (LipNet, Assael et al. 2016; shared/specs/vougioukas2019-sda.md §8), trained by
`tasks.training.train_stage` on a GRID store: whole clips' mouth boxes (`data.LipReadingDataset`) against their
transcripts with CTC (`torch.nn.CTCLoss(blank=0, zero_infinity=True)`, mean over the batch of each clip's loss
divided by its target length, PyTorch's "mean"), Adam. The trained reader scores WER (`reader.LipReader`,
`tasks.metrics.wer`).

Logged per step: "loss" (the CTC loss) and "cer" (the batch's character error rate of the greedy decoding, from
this step's training-mode forward: a cheap progress signal, not an evaluation); sample image "mouth" (what the
network sees). The checkpoint's `extra` holds the
fixed mouth box ("mouth_box": [y0, x0, h, w] in face-crop pixels), computed once from the train split, and the
face crop's size ("face_size": [H, W], 128×128 on the store's contract).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.config import TrainConfig
from models.lipreader.data import LipReadingDataset, MouthBox
from models.lipreader.network import LipNet, LipReaderConfig
from models.lipreader.text import character_error_rate, decode, greedy_decode
from models.system import Stage, StepOutput, to_uint8_rows


@dataclass(frozen=True)
class LipReaderTrainConfig(TrainConfig):
    """Lip-reader training (the loop's fields: `models.config.TrainConfig`).

    lr, beta1, beta2: Adam (1e-4, 0.9, 0.999: LipNet's rate, spec §8).
    box: (h, w) of the fixed mouth box in pixels of the 128×128 face crop (32×64, spec §8); the network input is
        the box resized to `model.size`.
    max_frames: frames per sample, longer clips cut (None: the split's longest; 75 on GRID).
    mirror: also every clip flipped left to right (LipNet's augmentation).
    cache_clips: clips' mouth boxes each data process keeps (a 75-frame 32×64 clip is 0.46 MB).
    model: the network (`LipReaderConfig`).
    held_out: fraction of the training split's clips set aside by `data.held_out_clips` and never trained on
        (0: none), for scoring sentences of the training speakers the reader did not see (LipNet's overlapped
        speakers; `benchmarks/lipreader_wer.py`).
    Presets: "paper": LipNet's network on 32×64 RGB boxes, lr 1e-4, batch 50 [D], 60 000 steps [D];
    "small" [D]: the small network (the 32×64 box at half resolution, grey), lr 5e-3 — a larger rate than the
    paper's, so that CTC leaves its all-blank plateau within a few hundred CPU steps —, no mirroring, batch 4, 300
    steps: on the 13 bundled training clips it goes from CER ~1 to ~0.01 in ~35 s on one CPU thread.
    """

    steps: int = 60000
    batch_size: int = 50
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    box: tuple[int, int] = (32, 64)
    max_frames: int | None = None
    mirror: bool = True
    cache_clips: int = 512
    model: LipReaderConfig = field(default_factory=LipReaderConfig)
    held_out: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.held_out < 1:
            raise ValueError(f"held_out must be in [0, 1), got {self.held_out}")

    @classmethod
    def presets(cls) -> dict:
        return {"paper": cls(model=LipReaderConfig.preset("paper")),
                "small": cls(steps=300, batch_size=4, lr=5e-3, mirror=False, model=LipReaderConfig.preset("small"))}


class LipReaderStage(Stage):
    """LipNet trained with CTC (module docstring)."""

    name = "lipreader"
    Config = LipReaderTrainConfig
    reads = ("face", "landmarks")
    inference_modules = ("lipnet",)
    resume_may_differ = frozenset({"cache_clips"})

    def __init__(self):
        self.ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)

    def modules(self, cfg: LipReaderTrainConfig) -> dict:
        return {"lipnet": LipNet(cfg.model)}

    def optimizers(self, cfg: LipReaderTrainConfig, modules: dict) -> dict:
        return {"lipnet": torch.optim.Adam(modules["lipnet"].parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))}

    def dataset(self, store_dir: Path, split: str, cfg: LipReaderTrainConfig,
                state: dict | None = None) -> LipReadingDataset:
        box = MouthBox(*state["mouth_box"]) if state and "mouth_box" in state else None
        return LipReadingDataset(store_dir, split, size=cfg.model.size, channels=cfg.model.channels, box=box,
                                 box_size=cfg.box, max_frames=cfg.max_frames, mirror=cfg.mirror, seed=cfg.seed,
                                 cache_clips=cfg.cache_clips, held_out=cfg.held_out if split == "train" else 0.0)

    def extra_state(self, dataset: LipReadingDataset) -> dict:
        return {"mouth_box": [int(v) for v in dataset.box], "face_size": list(dataset.face_size)}

    def step(self, modules, optimizers, batch, cfg: LipReaderTrainConfig, fabric) -> StepOutput:
        """batch: "video" float32 (B, T, C, H, W), "length" (B,), "target" int64 (B, L), "target_length" (B,)."""
        log_probs = modules["lipnet"](batch["video"], batch["length"])  # (T, B, 28)
        loss = self.ctc(log_probs, batch["target"], batch["length"], batch["target_length"])
        optimizer = optimizers["lipnet"]
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizer.step()
        with torch.no_grad():
            hyps = greedy_decode(log_probs.detach(), batch["length"])
            refs = [decode(t[:n]) for t, n in zip(batch["target"].cpu(), batch["target_length"].cpu())]
            cer = character_error_rate(hyps, refs)
        return StepOutput({"loss": loss.detach(), "cer": torch.tensor(cer)})

    def samples(self, batch: dict[str, torch.Tensor], out: StepOutput) -> dict[str, np.ndarray]:
        """"mouth": 8 frames spread over the batch's first clip as the network sees them (the mouth box, resized,
        grey as 3 equal channels), uint8 (H, 8·W, 3): shows whether the box holds the lips."""
        video, n = batch["video"][0], int(batch["length"][0])
        frames = video[torch.linspace(0, n - 1, 8).round().long()]  # (8, C, H, W)
        return {"mouth": to_uint8_rows(frames.expand(-1, 3, -1, -1))}
