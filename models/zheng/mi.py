"""Zheng et al. 2020's temporal residual loss L_tr and its mutual-information estimator Est_m (ICPR, §III-A,
Eq. 5–6; shared/specs/zheng2020.md §3).

Temporal residuals, t = 1 … T−1 (`deltas`): ΔA_t = a_{t+1} − a_t, the difference of consecutive 28×12 MFCC windows,
and ΔL_t = l_{t+1} − l_t, of consecutive flattened landmarks (136). Est_m scores a pair, T(ΔA, ΔL) ∈ ℝ: "two streams,
3 conv + 2 FC, motivated by MINE". [D] network (no normalisation layers: T must be a per-pair function, and the
frozen estimator's train mode must equal its eval mode, see `models.zheng.word_detector.freeze_for_loss`):

    ΔA (N, 28, 12) --conv 1→32 k3 s1 p1--> (N, 32, 28, 12) --conv 32→64 k3 s2 p1--> (N, 64, 14, 6)
        --conv 64→128 k3 s2 p1--> (N, 128, 7, 3) --flatten--> (N, 2688)  (LeakyReLU(0.2) after each conv)
    ΔL (N, 136) ---------------------------------------------------------------------------.
    concat (N, 2824) --FC 2824→256--> LeakyReLU(0.2) --FC 256→1--> T (N,)

Eq. 5 (pre-training on ground truth) and Eq. 6 (L_tr = −mean_t Est_m[ΔA_t, ΔL̂_t] in A2L) print no marginal term, so
maximising them is unbounded [D]. Est_m is pre-trained on the Donsker–Varadhan bound of MINE (Belghazi et al. 2018,
§3.1, Definition 3.1),

    Î = mean T(ΔA, ΔL) − log mean exp T(ΔA, ΔL_shuffled),

whose marginal samples pair each ΔA with a ΔL shuffled across batch and time (`shuffled`), with MINE's moving-average
gradient correction (`MovingAverageDV`, §3.2 and Algorithm 1). In A2L, `temporal_residual_loss` gives Eq. 6 as
printed by default, or the full −Î. [D] init: PyTorch's defaults.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from models.config import DictConfig

FORMS = ("as_printed", "dv")


@dataclass(frozen=True)
class MIEstimatorConfig(DictConfig):
    """Est_m sizes ([D]); the defaults are the "paper" preset.

    channels: output channels of the audio stream's 3 convolutions (32, 64, 128; kernel 3, strides 1, 2, 2).
    hidden: width of the first fully connected layer on the concatenated streams (256).
    mfcc_rows, mfcc_cols: the MFCC window per video frame (28 at 100 Hz × 12 coefficients), as ΔA.
    n_landmarks_flat: the flattened landmarks per frame (136), as ΔL; the landmark stream is this vector itself.
    """

    channels: tuple[int, int, int] = (32, 64, 128)
    hidden: int = 256
    mfcc_rows: int = 28
    mfcc_cols: int = 12
    n_landmarks_flat: int = 136

    @classmethod
    def preset(cls, name: str) -> "MIEstimatorConfig":
        """"paper": the spec's sizes (0.82 M parameters). "small": the same structure, narrow (channels 8, 16, 32,
        hidden 64; CPU runs and tests). Raises KeyError on another name."""
        return {
            "paper": cls(),
            "small": cls(channels=(8, 16, 32), hidden=64),
        }[name]


def _conv_out(n: int, stride: int) -> int:
    return (n + 2 - 3) // stride + 1  # kernel 3, padding 1


class MIEstimator(nn.Module):
    """forward(d_audio (N, 28, 12), d_landmarks (N, 136)) -> scores T(ΔA, ΔL) (N,), all float32.

    N counts pairs (a batch of clips' B·(T−1) residuals flattened). Each score depends on its own pair only.
    Raises ValueError on shapes that do not match the config or on different N.
    """

    def __init__(self, cfg: MIEstimatorConfig = MIEstimatorConfig()):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.channels
        self.audio = nn.Sequential(
            nn.Conv2d(1, c1, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),  # (N, 1, 28, 12) -> (N, 32, 28, 12)
            nn.Conv2d(c1, c2, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),  # -> (N, 64, 14, 6)
            nn.Conv2d(c2, c3, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),  # -> (N, 128, 7, 3)
            nn.Flatten(),  # -> (N, 2688)
        )
        h, w = cfg.mfcc_rows, cfg.mfcc_cols
        for stride in (1, 2, 2):
            h, w = _conv_out(h, stride), _conv_out(w, stride)
        self.head = nn.Sequential(
            nn.Linear(c3 * h * w + cfg.n_landmarks_flat, cfg.hidden),  # (N, 2688 + 136) -> (N, 256)
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(cfg.hidden, 1),  # -> (N, 1)
        )

    def forward(self, d_audio: torch.Tensor, d_landmarks: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if d_audio.ndim != 3 or d_audio.shape[1:] != (cfg.mfcc_rows, cfg.mfcc_cols):
            raise ValueError(f"d_audio must be (N, {cfg.mfcc_rows}, {cfg.mfcc_cols}), got {tuple(d_audio.shape)}")
        if d_landmarks.shape != (len(d_audio), cfg.n_landmarks_flat):
            raise ValueError(f"d_landmarks must be (N, {cfg.n_landmarks_flat}) with d_audio's N = {len(d_audio)}, "
                             f"got {tuple(d_landmarks.shape)}")
        a = self.audio(d_audio.unsqueeze(1))  # (N, 2688)
        return self.head(torch.cat([a, d_landmarks], dim=1)).squeeze(1)  # (N,)


def deltas(x: torch.Tensor) -> torch.Tensor:
    """Temporal residuals x[:, 1:] − x[:, :-1]: (B, T, ...) -> (B, T−1, ...), same dtype (Eq. 5–6's ΔA_t, ΔL_t).
    Raises ValueError unless x is (B, T, ...) with T >= 2."""
    if x.ndim < 2 or x.shape[1] < 2:
        raise ValueError(f"x must be (B, T, ...) with T >= 2, got {tuple(x.shape)}")
    return x[:, 1:] - x[:, :-1]


def shuffled(d_landmarks: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The landmark residuals permuted jointly over batch and time: (B, T−1, D) -> (B, T−1, D), a random permutation
    of the B·(T−1) rows, drawn with `generator` (on its device; default: torch's global CPU generator). Paired with
    the unshuffled ΔA they are samples of the product of the marginals, for the DV bound's second term [D]
    (spec §3; MINE, Algorithm 1, draws them from an independent batch). Differentiable in d_landmarks. Raises
    ValueError unless d_landmarks is 3-dimensional."""
    if d_landmarks.ndim != 3:
        raise ValueError(f"d_landmarks must be (B, T-1, D), got {tuple(d_landmarks.shape)}")
    rows = d_landmarks.reshape(-1, d_landmarks.shape[2])  # (B·(T−1), D)
    device = generator.device if generator is not None else torch.device("cpu")
    perm = torch.randperm(len(rows), generator=generator, device=device).to(d_landmarks.device)
    return rows[perm].view_as(d_landmarks)


def _check_scores(joint: torch.Tensor, marginal: torch.Tensor) -> None:
    if joint.ndim != 1 or marginal.ndim != 1 or len(joint) == 0 or len(marginal) == 0:
        raise ValueError(f"joint and marginal must be non-empty (N,) and (M,) scores, got {tuple(joint.shape)} and "
                         f"{tuple(marginal.shape)}")


def _log_mean_exp(x: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(x, dim=0) - math.log(len(x))  # log mean exp x, without overflow


def dv_bound(joint: torch.Tensor, marginal: torch.Tensor) -> torch.Tensor:
    """The Donsker–Varadhan lower bound on the mutual information, in nats (MINE §3.1, Definition 3.1):
    Î = mean(joint) − log mean exp(marginal), from scores T on joint pairs (N,) and on marginal pairs (M,); 0-dim,
    their dtype. log mean exp is logsumexp − log M. The plain gradient of the second term is biased over a mini-batch;
    `MovingAverageDV` corrects it. Raises ValueError on empty or non-1-dimensional scores."""
    _check_scores(joint, marginal)
    return joint.mean() - _log_mean_exp(marginal)


class MovingAverageDV(nn.Module):
    """MINE's bias-corrected DV objective (Belghazi et al. 2018, §3.2, Algorithm 1), for pre-training Est_m (Eq. 5
    [D]). forward(joint (N,), marginal (M,)) -> (loss_for_backward 0-dim, mi_estimate 0-dim detached).

    - mi_estimate (log this): the plain DV bound of this batch, `dv_bound(joint, marginal)`, in nats.
    - loss_for_backward (optimise this): its value is exactly −mi_estimate, but its gradient is
      −(mean ∇T_joint − mean(exp(T_marg) ∇T_marg) / ema): the gradient of the log term, whose mini-batch estimate
      mean(e^T ∇T) / mean(e^T) is biased, has its denominator replaced by `ema`, a moving average of mean exp(T_marg)
      over batches. Built as −(mean(joint) − lme.detach() − (s − s.detach())) with lme = log mean exp(marginal),
      s = exp(lme) / ema.

    `ema` (0-dim float32 buffer; NaN until the first call) is set to the batch's mean exp(T_marg) on the first call,
    then ema ← (1 − alpha)·ema + alpha·mean exp(T_marg) before each use (as MINE's code: the current batch counts);
    alpha = 0.01 in MINE. It is updated only in training mode; in eval mode it is used as it stands (the batch's
    mean exp(T_marg) while it is still NaN), so validation does not move it. It is a buffer, so it is in
    `state_dict()` and a resumed run continues the average. Float32 overflows if mean exp(T_marg) > 3e38 (T ≳ 88);
    DV-trained scores stay far below. Raises ValueError on empty or non-1-dimensional scores, or on an alpha outside
    (0, 1].
    """

    ema: torch.Tensor

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.register_buffer("ema", torch.tensor(float("nan")))

    def forward(self, joint: torch.Tensor, marginal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_scores(joint, marginal)
        lme = _log_mean_exp(marginal)  # 0-dim, log mean exp T_marg
        batch = lme.detach().exp().to(self.ema.dtype)
        if self.training:
            with torch.no_grad():  # first call: the batch itself; then the moving average (no host sync either way)
                self.ema.copy_(torch.where(self.ema.isnan(), batch, (1 - self.alpha) * self.ema + self.alpha * batch))
        ema = torch.where(self.ema.isnan(), batch, self.ema)  # eval before any training call: the batch estimate
        s = torch.exp(lme - ema.log().to(lme.dtype))  # value ≈ 1; gradient mean(e^T ∇T) / ema
        estimate = joint.mean() - lme
        loss = -(joint.mean() - lme.detach() - (s - s.detach()))
        return loss, estimate.detach()


def temporal_residual_loss(estimator: MIEstimator, d_audio: torch.Tensor, d_landmarks_pred: torch.Tensor,
                           form: str = "as_printed", generator: torch.Generator | None = None) -> torch.Tensor:
    """L_tr for A2L (Eq. 6), 0-dim float32, from a (frozen, `freeze_for_loss`) pre-trained Est_m.

    d_audio: (B, T−1, 28, 12) ground-truth MFCC residuals ΔA; d_landmarks_pred: (B, T−1, 136) residuals of the
    predicted landmarks ΔL̂ (`deltas(L̂)`), t = 1 … T−1, flattened to N = B·(T−1) pairs.
    form "as_printed" (default): −mean T(ΔA, ΔL̂), Eq. 6 as printed (no marginal term). "dv" [D]: −Î, the negated DV
    bound `dv_bound` with ΔL̂ shuffled across batch and time (`shuffled`, drawn with `generator`) as the marginal;
    the gradient reaches ΔL̂ through both terms. Raises ValueError on an unknown form or mismatched shapes.
    """
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; choose from {', '.join(FORMS)}")
    if d_audio.ndim != 4 or d_landmarks_pred.ndim != 3 or d_audio.shape[:2] != d_landmarks_pred.shape[:2]:
        raise ValueError(f"d_audio must be (B, T-1, rows, cols) and d_landmarks_pred (B, T-1, D) with the same B and "
                         f"T-1, got {tuple(d_audio.shape)} and {tuple(d_landmarks_pred.shape)}")
    a = d_audio.flatten(0, 1)  # (N, 28, 12)
    joint = estimator(a, d_landmarks_pred.flatten(0, 1))  # (N,)
    if form == "as_printed":
        return -joint.mean()
    marginal = estimator(a, shuffled(d_landmarks_pred, generator).flatten(0, 1))  # (N,)
    return -dv_bound(joint, marginal)
