"""Zheng et al. 2020's four training stages (ICPR; shared/specs/zheng2020.md §2–5, §7), trained in this order by
`tasks.training.train_stage` (`talkface train --system zheng`):

word (§III-A, Eq. 3–4): the word detector Det_w on ground-truth landmarks of the store's word windows
    (`models.zheng.data.WordWindowDataset`), cross-entropy; Adam 1e-3 [D]. Its accuracy on the held-out split is
    logged after training (`validate`; the paper: 98.24 % LRW, 96.73 % GRID).
mi (§III-A, Eq. 5): the mutual-information estimator Est_m on (ΔMFCC window, Δlandmarks) pairs of the same
    windows, trained to maximise the Donsker–Varadhan bound with shuffled pairs as the marginal and MINE's
    moving-average gradient correction; Adam 1e-4 [D]. Logged: the estimate and the mean scores of real and shuffled
    pairs, so a user sees it learned something.
a2l (§III-A, Eq. 1–2, 6): A2L, L = L_rec + 0.1 L_wd + 0.1 L_tr with the frozen detector and estimator; Adam 2e-4,
    β (0.5, 0.999), batch 16 [D]. `use_word_detector`, `use_temporal_residual` give the four rows of Tab. IV.
l2f (§III-B, Eq. 7–9): the U-Net on the identity face + 68 heatmaps, L = L_adv + 10 L1 + 10 L_lip (the adaptive lip
    loss on the crop the landmarks give) with a conditional PatchGAN; trained on ground-truth landmarks (ATVGnet's
    decoupled training), or fine-tuned on the frozen A2L's predictions (`landmarks="predicted"`).

Every stage takes `landmark_subset` (Tab. V(a), `models.zheng.landmarks.SUBSETS`): the points outside it are zeroed
in every landmark input (reference, detector, estimator), left out of every landmark loss, and their heatmaps are
empty. Set it to the same value on all four stages (the A2L stage checks its frozen detector's and estimator's).

The cuDNN trap: on a GPU, cuDNN refuses an LSTM's backward in eval mode, and L_wd backpropagates through the frozen
detector's LSTM to A2L. The loop keeps frozen networks in eval mode, so the A2L step puts the detector in train
mode (`freeze_for_loss`: dropout 0 and no BatchNorm, so train mode computes what eval mode does); its parameters
stay without gradients.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from models.config import TrainConfig
from models.lipreader.text import GRID_VOCABULARY
from models.system import Stage, StepOutput, eval_mode, set_requires_grad, to_uint8_rows
from models.zheng.a2l import A2L, A2LConfig
from models.zheng.data import FrameDataset, WordWindowDataset
from models.zheng.l2f import L2FConfig, PatchDiscriminator, UNetGenerator, landmark_heatmaps, lip_loss
from models.zheng.landmarks import SUBSETS, flat_mask, subset_mask, vocabulary as store_vocabulary
from models.zheng.mi import (MIEstimator, MIEstimatorConfig, MovingAverageDV, deltas, dv_bound, shuffled,
                             temporal_residual_loss)
from models.zheng.word_detector import WordDetector, WordDetectorConfig, freeze_for_loss
from storage import store

GRID_WORDS = tuple(sorted(GRID_VOCABULARY))


def _check_subset(cfg) -> None:
    if cfg.landmark_subset not in SUBSETS:
        raise ValueError(f"landmark_subset must be one of {', '.join(SUBSETS)}, got {cfg.landmark_subset!r}")


def words_of(cfg) -> tuple[str, ...]:
    """The word classes of a word or a2l config: its `vocabulary`, GRID's 51 words when empty."""
    return tuple(cfg.vocabulary) or GRID_WORDS


def store_words(cfg, store_dir: Path):
    """`cfg` with an empty `vocabulary` filled in from a store that is not GRID's (its timed words, sorted)."""
    if cfg.vocabulary or store.read_card(store_dir)["dataset"] == "grid":
        return cfg
    return replace(cfg, vocabulary=store_vocabulary(store_dir))


def held_out_split(store_dir: Path, make) -> tuple[str, object] | None:
    """(split, dataset) of the first of "val", "test" for which `make(split)` builds a dataset; None if neither."""
    for split in ("val", "test"):
        try:
            return split, make(split)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class WordTrainConfig(TrainConfig):
    """The word detector Det_w (the loop's fields: `models.config.TrainConfig`).

    lr: Adam learning rate (1e-3 [D]). T: frames per word window (25, §III-A).
    vocabulary: the word classes, sorted; empty: GRID's 51 words for a GRID store, else filled in with the training
        store's timed words (LRW: its 500 folder words) when training starts.
    landmark_subset: the Tab. V(a) reference-landmark setting (all, no_eyes_nose, no_jaw, no_part_lip, no_upper_lip,
        no_right_lip): the points the detector sees.
    motion_scale: the detector sees each window's landmarks minus their mean over the window, times this (100 [D]:
        a word is in the motion, about 0.01 of the normalised coordinates, so this makes it about 1).
    model: the detector's sizes (`WordDetectorConfig`).
    Presets: "paper" (the spec's sizes), "small" (narrow, CPU); both 300 steps at batch 16.
    """

    lr: float = 1e-3
    T: int = 25
    vocabulary: tuple[str, ...] = ()
    landmark_subset: str = "all"
    motion_scale: float = 100.0
    model: WordDetectorConfig = field(default_factory=WordDetectorConfig)

    def __post_init__(self):
        super().__post_init__()
        _check_subset(self)

    @classmethod
    def presets(cls) -> dict:
        return {name: cls(model=WordDetectorConfig.preset(name)) for name in ("paper", "small")}


class WordStage(Stage):
    """Det_w on ground-truth landmarks of word windows (module docstring)."""

    name = "word"
    Config = WordTrainConfig
    reads = ("landmarks", "mfcc")

    def for_store(self, cfg: WordTrainConfig, store_dir: Path) -> WordTrainConfig:
        return store_words(cfg, store_dir)

    def modules(self, cfg: WordTrainConfig) -> dict:
        detector = WordDetector(cfg.model, len(words_of(cfg)))
        # not weights, but what a frozen copy in A2L must know: its word classes, input scale and points
        detector.vocabulary, detector.motion_scale = words_of(cfg), cfg.motion_scale
        detector.landmark_subset = cfg.landmark_subset
        return {"detector": detector}

    def optimizers(self, cfg: WordTrainConfig, modules: dict) -> dict:
        return {"detector": torch.optim.Adam(modules["detector"].parameters(), lr=cfg.lr)}

    def dataset(self, store_dir: Path, split: str, cfg: WordTrainConfig, state: dict | None = None):
        return WordWindowDataset(store_dir, split, vocab=words_of(cfg), T=cfg.T, seed=cfg.seed)

    def step(self, modules, optimizers, batch, cfg: WordTrainConfig, fabric) -> StepOutput:
        """batch: "landmarks" (B, T, 136), "word" (B,). Losses "loss" (cross-entropy) and "accuracy" (the batch's)."""
        mask = flat_mask(cfg.landmark_subset).to(batch["landmarks"])
        logits = modules["detector"](window_motion(batch["landmarks"] * mask, cfg.motion_scale))
        loss = F.cross_entropy(logits.float(), batch["word"])
        optimizers["detector"].zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizers["detector"].step()
        accuracy = (logits.argmax(1) == batch["word"]).float().mean()
        return StepOutput({"loss": loss.detach(), "accuracy": accuracy.detach()})

    def validate(self, modules: dict, store_dir: Path, cfg: WordTrainConfig) -> dict[str, float]:
        """{"<split>/accuracy", "<split>/windows"} of the trained detector on the store's val split (its test split
        when val has no word window; {} when neither has one)."""
        found = held_out_split(store_dir, lambda split: self.dataset(store_dir, split, cfg))
        if found is None:
            return {}
        split, data = found
        return {f"{split}/accuracy": detector_accuracy(modules["detector"], data, cfg),
                f"{split}/windows": float(len(data))}


def detector_accuracy(detector, data: WordWindowDataset, cfg: WordTrainConfig, indices=None) -> float:
    """The fraction of the word windows `indices` of `data` (default: all) whose word the detector names, in eval
    mode on its device, its input as in training (`cfg`'s subset mask and `window_motion`)."""
    indices = list(range(len(data)) if indices is None else indices)
    device = next(detector.parameters()).device
    mask = flat_mask(cfg.landmark_subset).to(device)
    correct = 0
    with torch.no_grad(), eval_mode(detector):
        for start in range(0, len(indices), 64):
            items = [data[i] for i in indices[start : start + 64]]
            x = window_motion(torch.stack([it["landmarks"] for it in items]).to(device) * mask, cfg.motion_scale)
            words = torch.stack([it["word"] for it in items]).to(device)
            correct += int((detector(x).argmax(1) == words).sum())
    return correct / len(indices)


def window_motion(landmarks: torch.Tensor, scale: float) -> torch.Tensor:
    """The detector's input [D]: landmarks (B, T, 136) minus their mean over the window, times `scale`."""
    return (landmarks - landmarks.mean(1, keepdim=True)) * scale


@dataclass(frozen=True)
class MITrainConfig(TrainConfig):
    """The mutual-information estimator Est_m (the loop's fields: `models.config.TrainConfig`).

    lr: Adam learning rate (1e-4 [D]). T: frames per window (25; T − 1 delta pairs each).
    ema_rate: MINE's moving-average rate for the corrected gradient of the log term (0.01, Belghazi et al. 2018).
    landmark_subset: the Tab. V(a) setting (see `WordTrainConfig`).
    motion_scale, audio_scale: the estimator sees ΔL × motion_scale and ΔA × audio_scale (100 and 0.1 [D]: both
        about 1; Δlandmarks are about 0.01 of the normalised coordinates, ΔMFCC about 12).
    model: the estimator's sizes (`MIEstimatorConfig`).
    Presets: "paper" (the spec's sizes), "small" (narrow, CPU); both 300 steps at batch 16.
    """

    lr: float = 1e-4
    T: int = 25
    ema_rate: float = 0.01
    landmark_subset: str = "all"
    motion_scale: float = 100.0
    audio_scale: float = 0.1
    model: MIEstimatorConfig = field(default_factory=MIEstimatorConfig)

    def __post_init__(self):
        super().__post_init__()
        _check_subset(self)

    @classmethod
    def presets(cls) -> dict:
        return {"paper": cls(model=MIEstimatorConfig.preset("paper")),
                "small": cls(model=MIEstimatorConfig.preset("small"), lr=1e-3)}


def estimator_inputs(estimator, mfcc: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ΔA × audio_scale (B, T−1, 28, 12), ΔL × motion_scale (B, T−1, 136)) of windows mfcc (B, T, 28, 12) and
    landmarks (B, T, 136), at the scales of `estimator`'s config (`MITrainConfig`)."""
    bare = getattr(estimator, "module", estimator)
    return deltas(mfcc) * bare.audio_scale, deltas(landmarks) * bare.motion_scale


def pair_scores(estimator, d_audio: torch.Tensor, d_landmarks: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(joint, marginal) scores (N,), N = B·(T−1): T on the real pairs (ΔA_t, ΔL_t) and on pairs with the landmark
    deltas shuffled across batch and time, in one forward pass (one DDP reduction). d_audio (B, T−1, 28, 12),
    d_landmarks (B, T−1, 136), scaled (`estimator_inputs`)."""
    a = d_audio.flatten(0, 1)  # (N, 28, 12)
    real, fake = d_landmarks.flatten(0, 1), shuffled(d_landmarks, generator).flatten(0, 1)  # (N, 136) each
    scores = estimator(torch.cat([a, a]), torch.cat([real, fake])).float()  # (2N,)
    return scores[: len(a)], scores[len(a):]


class MIStage(Stage):
    """Est_m with the Donsker–Varadhan bound on ground-truth pairs (module docstring)."""

    name = "mi"
    Config = MITrainConfig
    reads = ("landmarks", "mfcc")

    def modules(self, cfg: MITrainConfig) -> dict:
        estimator = MIEstimator(cfg.model)
        estimator.add_module("moving_average", MovingAverageDV(cfg.ema_rate))  # its buffer travels in the weights
        # for a frozen copy in A2L too: its input scales and points
        estimator.motion_scale, estimator.audio_scale = cfg.motion_scale, cfg.audio_scale
        estimator.landmark_subset = cfg.landmark_subset
        return {"estimator": estimator}

    def optimizers(self, cfg: MITrainConfig, modules: dict) -> dict:
        return {"estimator": torch.optim.Adam(modules["estimator"].parameters(), lr=cfg.lr)}

    def dataset(self, store_dir: Path, split: str, cfg: MITrainConfig, state: dict | None = None):
        return WordWindowDataset(store_dir, split, T=cfg.T, seed=cfg.seed)

    def step(self, modules, optimizers, batch, cfg: MITrainConfig, fabric) -> StepOutput:
        """batch: "mfcc" (B, T, 28, 12), "landmarks" (B, T, 136). Losses "loss" (what is minimised: −DV with MINE's
        corrected gradient), "mi" (the DV estimate in nats), "joint" and "marginal" (mean scores of real and
        shuffled pairs)."""
        estimator = modules["estimator"]
        mask = flat_mask(cfg.landmark_subset).to(batch["landmarks"])
        joint, marginal = pair_scores(estimator, *estimator_inputs(estimator, batch["mfcc"], batch["landmarks"] * mask))
        average = getattr(estimator, "module", estimator).moving_average
        loss, mi = average(joint, marginal)
        optimizers["estimator"].zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizers["estimator"].step()
        return StepOutput({"loss": loss.detach(), "mi": mi.detach(), "joint": joint.mean().detach(),
                           "marginal": marginal.mean().detach()})

    def validate(self, modules: dict, store_dir: Path, cfg: MITrainConfig) -> dict[str, float]:
        """{"<split>/mi", "<split>/joint", "<split>/marginal"} of the trained estimator on the store's val split (else
        test; else the train split): the DV estimate and the mean scores of real and shuffled pairs there."""
        found = held_out_split(store_dir, lambda split: self.dataset(store_dir, split, cfg))
        split, data = found if found is not None else ("train", self.dataset(store_dir, "train", cfg))
        estimator, mask = modules["estimator"], flat_mask(cfg.landmark_subset)
        device = next(estimator.parameters()).device
        items = [data[i] for i in range(min(len(data), 256))]
        mfcc = torch.stack([it["mfcc"] for it in items]).to(device)
        landmarks = torch.stack([it["landmarks"] for it in items]).to(device) * mask.to(device)
        with torch.no_grad(), eval_mode(estimator):
            joint, marginal = pair_scores(estimator, *estimator_inputs(estimator, mfcc, landmarks),
                                          torch.Generator(device=device).manual_seed(cfg.seed))
        return {f"{split}/mi": float(dv_bound(joint, marginal)), f"{split}/joint": float(joint.mean()),
                f"{split}/marginal": float(marginal.mean())}


@dataclass(frozen=True)
class A2LLossConfig:
    """A2L's loss (Eq. 2, 6; spec §5, §7).

    use_word_detector: add λ_wd · L_wd, the frozen detector's cross-entropy on the predicted landmarks (Tab. IV +WD).
    use_temporal_residual: add λ_tr · L_tr, the frozen estimator's temporal residual loss (Tab. IV +TR).
    lambda_wd, lambda_tr: their weights (0.1, 0.1 [D]).
    rec_scale: L_rec in units of this many normalised units (64 [D]: pixels of the 128-px crop, the unit in which
        λ 0.1 leaves L_rec the largest term; in normalised coordinates L_wd would be about ten times L_rec).
    tr_form: "as_printed" (Eq. 6: −mean T(ΔA, ΔL̂)) or "dv" (−the DV bound, shuffled ΔL̂ as the marginal).
    """

    use_word_detector: bool = True
    use_temporal_residual: bool = True
    lambda_wd: float = 0.1
    lambda_tr: float = 0.1
    rec_scale: float = 64.0
    tr_form: Literal["as_printed", "dv"] = "as_printed"


@dataclass(frozen=True)
class A2LTrainConfig(TrainConfig):
    """A2L (the loop's fields: `models.config.TrainConfig`).

    lr, beta1, beta2: Adam (2e-4, 0.5, 0.999 [D]). T: frames per window (25, the detector's input).
    vocabulary: the word classes of the windows' labels; must be the frozen detector's (see `WordTrainConfig`).
    landmark_subset: the Tab. V(a) setting: the reference's other points are zeroed and left out of L_rec; the
        frozen detector and estimator must have been trained with the same.
    model: A2L's sizes (`A2LConfig`). loss: the weights and the Tab. IV switches (`A2LLossConfig`).
    Presets: "paper" (the spec's sizes), "small" (narrow, CPU); both 300 steps at batch 16.
    """

    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    T: int = 25
    vocabulary: tuple[str, ...] = ()
    landmark_subset: str = "all"
    model: A2LConfig = field(default_factory=A2LConfig)
    loss: A2LLossConfig = field(default_factory=A2LLossConfig)

    def __post_init__(self):
        super().__post_init__()
        _check_subset(self)
        if self.loss.tr_form not in ("as_printed", "dv"):
            raise ValueError(f"loss.tr_form must be as_printed or dv, got {self.loss.tr_form!r}")

    @classmethod
    def presets(cls) -> dict:
        return {name: cls(model=A2LConfig.preset(name)) for name in ("paper", "small")}


def rec_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 2: the mean over frames and kept points of ‖l̂_{t,k} − l_{t,k}‖₂. pred, target (B, T, 136); mask (68,)
    bool. The square root has a 1e-8 floor inside, so a perfect point has a finite gradient."""
    d = (pred - target).unflatten(-1, (68, 2))[..., mask.to(pred.device), :]  # (B, T, K, 2)
    return (d.pow(2).sum(-1) + 1e-8).sqrt().mean()


class A2LStage(Stage):
    """A2L with the frozen detector and estimator of stages word and mi (module docstring)."""

    name = "a2l"
    Config = A2LTrainConfig
    reads = ("landmarks", "mfcc")
    inference_modules = ("a2l",)

    def for_store(self, cfg: A2LTrainConfig, store_dir: Path) -> A2LTrainConfig:
        return store_words(cfg, store_dir)

    def uses(self, cfg: A2LTrainConfig) -> dict:
        out = {}
        if cfg.loss.use_word_detector:
            out["word_detector"] = (WordStage(), "detector")
        if cfg.loss.use_temporal_residual:
            out["estimator"] = (MIStage(), "estimator")
        return out

    def modules(self, cfg: A2LTrainConfig) -> dict:
        return {"a2l": A2L(cfg.model)}

    def optimizers(self, cfg: A2LTrainConfig, modules: dict) -> dict:
        return {"a2l": torch.optim.Adam(modules["a2l"].parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))}

    def dataset(self, store_dir: Path, split: str, cfg: A2LTrainConfig, state: dict | None = None):
        return WordWindowDataset(store_dir, split, vocab=words_of(cfg), T=cfg.T, seed=cfg.seed)

    def step(self, modules, optimizers, batch, cfg: A2LTrainConfig, fabric) -> StepOutput:
        """batch: "reference" (B, 136), "mfcc" (B, T, 28, 12), "landmarks" (B, T, 136), "word" (B,). Losses
        "loss" (the optimised sum), "rec", and "wd", "tr" when switched on; outputs "landmarks" (B, T, 136)."""
        mask = flat_mask(cfg.landmark_subset).to(batch["landmarks"])
        pred = modules["a2l"](batch["reference"] * mask, batch["mfcc"]).float()  # (B, T, 136)
        keep = torch.from_numpy(subset_mask(cfg.landmark_subset))
        losses = {"rec": cfg.loss.rec_scale * rec_loss(pred, batch["landmarks"], keep)}  # pixels of the crop
        total = losses["rec"]
        for name in self.uses(cfg):
            if modules[name].landmark_subset != cfg.landmark_subset:
                raise ValueError(f"the frozen {name} was trained on landmark subset {modules[name].landmark_subset}, "
                                 f"a2l on {cfg.landmark_subset}: set the same landmark_subset on every stage")
        if cfg.loss.use_word_detector:
            detector = modules["word_detector"]
            if tuple(detector.vocabulary) != words_of(cfg):
                raise ValueError(f"the frozen word detector knows {len(detector.vocabulary)} words, the a2l "
                                 f"windows are labelled with {len(words_of(cfg))}: train both on the same store")
            freeze_for_loss(detector)  # train mode, dropout 0: cuDNN's LSTM backward (module docstring)
            losses["wd"] = F.cross_entropy(detector(window_motion(pred * mask, detector.motion_scale)).float(),
                                           batch["word"])
            total = total + cfg.loss.lambda_wd * losses["wd"]
        if cfg.loss.use_temporal_residual:
            estimator = modules["estimator"]
            losses["tr"] = temporal_residual_loss(estimator, *estimator_inputs(estimator, batch["mfcc"], pred * mask),
                                                  form=cfg.loss.tr_form).float()
            total = total + cfg.loss.lambda_tr * losses["tr"]
        optimizers["a2l"].zero_grad(set_to_none=True)
        fabric.backward(total)
        optimizers["a2l"].step()
        losses["loss"] = total
        return StepOutput({k: v.detach() for k, v in losses.items()}, {"landmarks": pred.detach()})


@dataclass(frozen=True)
class L2FLossConfig:
    """L2F's loss (Eq. 7–9; spec §5, §7): L = λ_adv L_adv + λ_rec ‖f − f̂‖₁ + λ_lip ‖Crop(f) − Crop(f̂)‖₁.

    use_gan: the conditional PatchGAN and L_adv (non-saturating BCE). use_lip_loss: the adaptive lip loss (Eq. 8).
    lambda_adv, lambda_rec, lambda_lip: the weights (1, 10, 10 [D]).
    lip_size: the lip crop (H, W) in pixels (32, 64 [D]); lip_margin: the margin around points 48–67 (0.25 [D]).
    """

    use_gan: bool = True
    use_lip_loss: bool = True
    lambda_adv: float = 1.0
    lambda_rec: float = 10.0
    lambda_lip: float = 10.0
    lip_size: tuple[int, int] = (32, 64)
    lip_margin: float = 0.25


@dataclass(frozen=True)
class L2FTrainConfig(TrainConfig):
    """L2F and its PatchGAN (the loop's fields: `models.config.TrainConfig`); each step is one discriminator and
    one generator update.

    lr, beta1, beta2: Adam for both networks (2e-4, 0.5, 0.999 [D]).
    T: consecutive frames per sample (1: the U-Net is per frame; for `landmarks="predicted"` a longer window gives
        A2L its context, e.g. 25). stride: frames between window starts.
    landmarks: "gt" (the store's dlib landmarks, the decoupled training) or "predicted" (fine-tune on the frozen
        A2L of stage a2l, from the window's audio and the identity frame's landmarks).
    landmark_subset: the Tab. V(a) setting: heatmaps of the other points are empty.
    cache_clips: clips whose faces each data process keeps.
    model: the U-Net's and the PatchGAN's sizes and the heatmap σ (`L2FConfig`). loss: `L2FLossConfig`.
    Presets: "paper" (the spec's sizes), "small" (narrow, CPU); both 300 steps at batch 16 frames.
    """

    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    T: int = 1
    stride: int = 1
    landmarks: Literal["gt", "predicted"] = "gt"
    landmark_subset: str = "all"
    cache_clips: int = 16
    model: L2FConfig = field(default_factory=L2FConfig)
    loss: L2FLossConfig = field(default_factory=L2FLossConfig)

    def __post_init__(self):
        super().__post_init__()
        _check_subset(self)
        if self.landmarks not in ("gt", "predicted"):
            raise ValueError(f"landmarks must be gt or predicted, got {self.landmarks!r}")

    @classmethod
    def presets(cls) -> dict:
        return {name: cls(model=L2FConfig.preset(name)) for name in ("paper", "small")}


def render_inputs(batch: dict, cfg: L2FTrainConfig, a2l=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(identity (N, 3, H, W), landmarks (N, 68, 2) crop pixels, heatmaps (N, 68, H, W)) of a batch's N = B·T
    frames: the store's landmarks, or the frozen A2L's from the window's audio ("predicted")."""
    B, T, _, H, W = batch["frames"].shape
    if cfg.landmarks == "predicted":
        mask = flat_mask(cfg.landmark_subset).to(batch["reference"])
        with torch.no_grad():
            pred = a2l(batch["reference"] * mask, batch["mfcc"]).float()  # (B, T, 136), x / (H/2) − 1
        points = (pred.unflatten(-1, (68, 2)) + 1) * (H / 2)  # (B, T, 68, 2) crop pixels
    else:
        points = batch["landmarks"]
    points = points.flatten(0, 1)  # (N, 68, 2)
    keep = torch.from_numpy(subset_mask(cfg.landmark_subset)).to(points.device)
    heatmaps = landmark_heatmaps(points, H, cfg.model.sigma, keep)
    identity = batch["identity"].unsqueeze(1).expand(B, T, -1, -1, -1).flatten(0, 1)
    return identity, points, heatmaps


class L2FStage(Stage):
    """The U-Net renderer and its PatchGAN (module docstring)."""

    name = "l2f"
    Config = L2FTrainConfig
    reads = ("face", "landmarks", "mfcc")
    inference_modules = ("generator",)
    resume_may_differ = frozenset({"cache_clips"})

    def uses(self, cfg: L2FTrainConfig) -> dict:
        return {"a2l": (A2LStage(), "a2l")} if cfg.landmarks == "predicted" else {}

    def modules(self, cfg: L2FTrainConfig) -> dict:
        out = {"generator": UNetGenerator(cfg.model)}
        if cfg.loss.use_gan:
            out["discriminator"] = PatchDiscriminator(cfg.model)
        return out

    def optimizers(self, cfg: L2FTrainConfig, modules: dict) -> dict:
        betas = (cfg.beta1, cfg.beta2)
        return {name: torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=betas) for name, m in modules.items()}

    def dataset(self, store_dir: Path, split: str, cfg: L2FTrainConfig, state: dict | None = None):
        return FrameDataset(store_dir, split, T=cfg.T, stride=cfg.stride, seed=cfg.seed, cache_clips=cfg.cache_clips)

    def step(self, modules, optimizers, batch, cfg: L2FTrainConfig, fabric) -> StepOutput:
        """batch: "identity" (B, 3, H, W), "frames" (B, T, 3, H, W), "landmarks" (B, T, 68, 2), "reference" (B, 136),
        "mfcc" (B, T, 28, 12). Losses "g/<term>", "d/<term>" ("total": the optimised sums); outputs "fake" and
        "real" (N, 3, H, W) in [-1, 1], N = B·T."""
        loss_cfg = cfg.loss
        identity, points, heatmaps = render_inputs(batch, cfg, modules.get("a2l"))
        real = batch["frames"].flatten(0, 1)  # (N, 3, H, W)
        fake = modules["generator"](identity, heatmaps).float()  # (N, 3, H, W)
        losses: dict[str, torch.Tensor] = {}
        if loss_cfg.use_gan:  # 1. the PatchGAN on real and (detached) generated frames, both with the heatmaps
            d = modules["discriminator"]
            set_requires_grad(d, True)
            real_logit, fake_logit = d(real, heatmaps).float(), d(fake.detach(), heatmaps).float()
            d_real = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
            d_fake = F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
            d_total = 0.5 * (d_real + d_fake)
            optimizers["discriminator"].zero_grad(set_to_none=True)
            fabric.backward(d_total)
            optimizers["discriminator"].step()
            set_requires_grad(d, False)
            losses.update({"d/real": d_real, "d/fake": d_fake, "d/total": d_total})
        # 2. the generator: L1, the lip crop of the landmarks' box, and the frozen D (unwrapped: no DDP reduction)
        g_terms = {"l1": (fake - real).abs().mean()}
        g_total = loss_cfg.lambda_rec * g_terms["l1"]
        if loss_cfg.use_lip_loss:
            g_terms["lip"] = lip_loss(fake, real, points, out_size=tuple(loss_cfg.lip_size),
                                      margin=loss_cfg.lip_margin)
            g_total = g_total + loss_cfg.lambda_lip * g_terms["lip"]
        if loss_cfg.use_gan:
            d = modules["discriminator"]
            with fabric.autocast():
                logit = getattr(d, "module", d)(fake, heatmaps).float()  # Fabric's wrapper: the bare module
            g_terms["adv"] = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
            g_total = g_total + loss_cfg.lambda_adv * g_terms["adv"]
        optimizers["generator"].zero_grad(set_to_none=True)
        fabric.backward(g_total)
        optimizers["generator"].step()
        if loss_cfg.use_gan:
            set_requires_grad(modules["discriminator"], True)
        losses.update({f"g/{k}": v for k, v in g_terms.items()}, **{"g/total": g_total})
        return StepOutput({k: v.detach() for k, v in losses.items()}, {"fake": fake.detach(), "real": real})

    def samples(self, batch, out: StepOutput) -> dict[str, np.ndarray]:
        """"frames": up to 8 generated frames over their real ones."""
        return {"frames": to_uint8_rows(out.outputs["fake"][:8], out.outputs["real"][:8])}
