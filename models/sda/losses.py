"""The losses of Vougioukas, Petridis, Pantic 2019 (IJCV, Sec. 3.3, Eq. 2-6; shared/specs/vougioukas2019-sda.md §4)
and the samples each discriminator sees, on padded batches of whole clips (`data.UtteranceDataset`: video (B, T, 3,
H, W), audio windows (B, T, 3200), lengths (B,)).

    L_G = λ_img·L_img + λ_sync·L_sync + λ_seq·L_seq + λ_rec·L_rec      λ_img 1, λ_sync 0.8, λ_seq 0.2, λ_rec 600
    L_rec: L1 on the lower half of the face (rows H/2 … H - 1), mean over those pixels of the valid frames
    frame D (Eq. 2): the still x_1 with `frames_per_clip` frames per clip drawn uniformly among its valid ones
    sync D (Eq. 3): 5-frame snippets of the lower half against the 0.2 s of audio under them; weights 1 for real
        in-sync pairs, ½ for real video with audio shifted within the clip (by at least `min_shift` frames [D]), ½ for
        generated video with its own audio; `snippets_per_clip` of each kind [D]
    sequence D (Eq. 4): the whole clip with its audio
Every adversarial term is binary cross-entropy on logits (the paper's log D / log (1 - D)); the generator's
terms use the non-saturating form, -log D(G(·)). The audio of the snippet at frames t … t+4 is the audio window
centred on frame t + 2 (`generator.audio_windows`): samples [640 t, 640 t + 3200) of the clip.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from models.config import DictConfig
from models.sda.discriminators import SYNC_FRAMES


@dataclass(frozen=True)
class SDALossConfig(DictConfig):
    """Loss weights and the ablation switches of Tab. 5 and 6 (defaults: the full model).

    lambda_img, lambda_sync, lambda_seq, lambda_rec: 1, 0.8, 0.2, 600.
    use_frame_d, use_sync_d, use_seq_d: each discriminator ("w/o frame D", "w/o sync D", "w/o sequence D");
        use_adv False drops all three ("w/o L_adv").
    use_l1: the reconstruction term ("w/o L1"); l1_region "lower" (the paper) or "whole" (the face).
    frames_per_clip: frames each clip gives the frame D (2 [D]); snippets_per_clip: snippets of each kind per clip
        for the sync D (4 [D]); min_shift: frames the shifted audio is at least off by (5 [D]).
    """

    lambda_img: float = 1.0
    lambda_sync: float = 0.8
    lambda_seq: float = 0.2
    lambda_rec: float = 600.0
    use_adv: bool = True
    use_frame_d: bool = True
    use_sync_d: bool = True
    use_seq_d: bool = True
    use_l1: bool = True
    l1_region: Literal["lower", "whole"] = "lower"
    frames_per_clip: int = 2
    snippets_per_clip: int = 4
    min_shift: int = 5

    def __post_init__(self):
        if self.l1_region not in ("lower", "whole") or min(self.frames_per_clip, self.snippets_per_clip) < 1 \
                or self.min_shift < 1:
            raise ValueError(f"l1_region must be lower or whole, the sample counts and min_shift >= 1, got {self}")
        if not self.use_l1 and not self.adversarial:
            raise ValueError("with neither L1 nor a discriminator nothing trains the generator")

    @property
    def adversarial(self) -> tuple[str, ...]:
        """The discriminators in use: a subset of ("frame", "sync", "sequence")."""
        if not self.use_adv:
            return ()
        return tuple(n for n, on in (("frame", self.use_frame_d), ("sync", self.use_sync_d),
                                     ("sequence", self.use_seq_d)) if on)


def valid_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """bool (B, T): frame t of clip b is within its length."""
    return torch.arange(T, device=lengths.device) < lengths[:, None]


def reconstruction_loss(fake: torch.Tensor, real: torch.Tensor, lengths: torch.Tensor,
                        region: str = "lower") -> torch.Tensor:
    """L1 between generated and real clips (B, T, 3, H, W) over the valid frames, on rows H/2 … H-1 ("lower", the
    mouth and jaw; P Eq. 5) or the whole face: the mean absolute difference over those pixels, a 0-dim tensor."""
    rows = slice(fake.shape[3] // 2, None) if region == "lower" else slice(None)
    diff = (fake[:, :, :, rows] - real[:, :, :, rows]).abs().mean((2, 3, 4))  # (B, T)
    mask = valid_mask(lengths, fake.shape[1]).to(diff.dtype)
    return (diff * mask).sum() / mask.sum()


def sample_frames(lengths: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """int64 (B, k): k frame indices per clip, uniform among its valid frames (with replacement)."""
    u = torch.rand(len(lengths), k, generator=generator, device=lengths.device)
    return (u * lengths[:, None]).long().clamp_max(lengths[:, None] - 1)


def sample_snippets(lengths: torch.Tensor, k: int, min_shift: int, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(starts, shifted) int64 (B, k): first frames of 5-frame snippets within each clip, and for each the start of
    the audio it is paired with as a shifted negative: another snippet of the same clip at least `min_shift` frames
    away, drawn uniformly among those (the farthest start there is when the clip is too short). Raises ValueError when
    a clip has fewer than 5 frames."""
    if (lengths < SYNC_FRAMES).any():
        raise ValueError(f"every clip needs {SYNC_FRAMES} frames for a sync snippet, got lengths {lengths.tolist()}")
    last = (lengths - SYNC_FRAMES)[:, None]  # (B, 1) last start
    starts = (torch.rand(len(lengths), k, generator=generator, device=lengths.device) * (last + 1)).long()
    starts = starts.clamp_max(last)
    shifted = torch.empty_like(starts)
    for b in range(len(lengths)):
        candidates = torch.arange(int(last[b, 0]) + 1, device=lengths.device)
        for j in range(k):
            far = candidates[(candidates - starts[b, j]).abs() >= min_shift]
            if not len(far):  # a short clip: the farthest start there is
                far = candidates[(candidates - starts[b, j]).abs().argmax()].view(1)
            pick = torch.randint(len(far), (1,), generator=generator, device=lengths.device)
            shifted[b, j] = far[pick]
    return starts, shifted


def snippets(video: torch.Tensor, audio: torch.Tensor, starts: torch.Tensor, audio_starts: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The sync D's inputs: lower halves of 5 frames from each start, (B·k, 3, 5, H/2, W), and the 0.2 s of audio
    under the snippet starting at `audio_starts` (default: the same starts), (B·k, 3200): the window centred on
    its frame start + 2. video (B, T, 3, H, W); audio (B, T, 3200); starts int64 (B, k)."""
    B, k = starts.shape
    H = video.shape[3]
    audio_starts = starts if audio_starts is None else audio_starts
    b = torch.arange(B, device=video.device)[:, None].expand(B, k)
    frames = starts[..., None] + torch.arange(SYNC_FRAMES, device=video.device)  # (B, k, 5)
    mouths = video[b[..., None], frames][:, :, :, :, H // 2:]  # (B, k, 5, 3, H/2, W)
    sound = audio[b, audio_starts + SYNC_FRAMES // 2]  # (B, k, 3200)
    return mouths.flatten(0, 1).transpose(1, 2), sound.flatten(0, 1)


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy of logits against a constant label: mean over the batch."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def sync_discriminator_loss(real: torch.Tensor, shifted: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """P Eq. 3 for the sync D: BCE(real in-sync, 1) + ½ BCE(shifted, 0) + ½ BCE(generated, 0), logits (N,)."""
    return bce(real, 1.0) + 0.5 * bce(shifted, 0.0) + 0.5 * bce(fake, 0.0)


def generator_loss(terms: dict[str, torch.Tensor], cfg: SDALossConfig) -> dict[str, torch.Tensor]:
    """The weighted sum of the generator's terms: terms {"frame", "sync", "sequence": each discriminator's logits on
    generated samples (needed for those in `cfg.adversarial`), "rec": `reconstruction_loss` (when use_l1)} ->
    the unweighted terms used ("frame", "sync", "sequence": -log D, non-saturating; "rec") and "total"."""
    out, total = {}, 0.0
    weights = {"frame": cfg.lambda_img, "sync": cfg.lambda_sync, "sequence": cfg.lambda_seq}
    for name in cfg.adversarial:
        out[name] = bce(terms[name], 1.0)
        total = total + weights[name] * out[name]
    if cfg.use_l1:
        out["rec"] = terms["rec"]
        total = total + cfg.lambda_rec * out["rec"]
    out["total"] = total
    return out
