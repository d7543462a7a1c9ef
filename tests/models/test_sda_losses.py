"""The Vougioukas et al. 2019 losses and samples (`models.sda.losses`): the L1 sees only the lower half of valid
frames, the shifted audio really is shifted, a snippet's audio is the 0.2 s under it, the weights and switches."""
from __future__ import annotations

import pytest
import torch

from models.sda.losses import (SDALossConfig, generator_loss, reconstruction_loss, sample_frames, sample_snippets,
                               snippets, sync_discriminator_loss)


def test_the_l1_sees_only_the_lower_half_of_valid_frames():
    torch.manual_seed(0)
    real = torch.rand(2, 6, 3, 128, 96)
    fake = real.clone()
    lengths = torch.tensor([6, 4])
    fake[:, :, :, :64] += 1.0  # the upper half
    fake[1, 4:] += 5.0  # frames past clip 1's end
    assert reconstruction_loss(fake, real, lengths) == 0
    assert reconstruction_loss(fake, real, lengths, region="whole") > 0
    fake[0, 0, 0, 100, 50] += 64 * 96 * 3 * 10  # one lower pixel of one valid frame (of 10)
    assert reconstruction_loss(fake, real, lengths).item() == pytest.approx(1.0, rel=1e-4)


def test_frames_and_snippets_stay_inside_each_clip_and_shifts_are_real():
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([75, 12, 7])
    frames = sample_frames(lengths, 50, g)
    assert frames.shape == (3, 50) and (frames >= 0).all() and (frames < lengths[:, None]).all()
    starts, shifted = sample_snippets(lengths, 40, min_shift=5, generator=g)
    last = (lengths - 5)[:, None]
    assert (starts <= last).all() and (shifted <= last).all() and (starts >= 0).all()
    farthest = torch.maximum(starts, last - starts)  # the farthest other start a clip has
    assert ((shifted - starts).abs() >= torch.clamp(farthest, max=5)).all()  # 5 frames off, or as far as it goes
    assert ((shifted - starts).abs()[0] >= 5).all() and ((shifted - starts).abs() >= 1).all()
    with pytest.raises(ValueError, match="5 frames"):
        sample_snippets(torch.tensor([4]), 1, 5)


def test_a_snippets_audio_is_the_window_under_it():
    B, T = 2, 10
    video = torch.arange(B * T, dtype=torch.float32).view(B, T, 1, 1, 1).expand(B, T, 3, 128, 96).clone()
    audio = torch.arange(B * T, dtype=torch.float32).view(B, T, 1).expand(B, T, 3200).clone()
    starts = torch.tensor([[0, 3], [5, 1]])
    mouths, sound = snippets(video, audio, starts)
    assert mouths.shape == (4, 3, 5, 64, 96) and sound.shape == (4, 3200)
    assert mouths[1, 0, :, 0, 0].tolist() == [3, 4, 5, 6, 7]  # clip 0, frames 3 … 7
    assert mouths[2, 0, :, 0, 0].tolist() == [15, 16, 17, 18, 19]  # clip 1, frames 5 … 9
    assert sound[:, 0].tolist() == [2, 5, 17, 13]  # the window centred on start + 2
    _, shifted_sound = snippets(video, audio, starts, audio_starts=torch.tensor([[5, 0], [0, 5]]))
    assert shifted_sound[:, 0].tolist() == [7, 2, 12, 17]


def test_weights_and_switches():
    logits = {k: torch.zeros(4) for k in ("frame", "sync", "sequence")}
    full = generator_loss({**logits, "rec": torch.tensor(0.01)}, SDALossConfig())
    ln2 = torch.log(torch.tensor(2.0))
    assert set(full) == {"frame", "sync", "sequence", "rec", "total"}
    torch.testing.assert_close(full["total"], (1 + 0.8 + 0.2) * ln2 + 600 * 0.01)
    no_adv = generator_loss({"rec": torch.tensor(0.01)}, SDALossConfig(use_adv=False))
    assert set(no_adv) == {"rec", "total"}
    no_sync = generator_loss({**logits, "rec": torch.tensor(0.0)}, SDALossConfig(use_sync_d=False))
    assert "sync" not in no_sync and SDALossConfig(use_sync_d=False).adversarial == ("frame", "sequence")
    assert "rec" not in generator_loss(logits, SDALossConfig(use_l1=False))
    with pytest.raises(ValueError, match="nothing trains"):
        SDALossConfig(use_adv=False, use_l1=False)
    torch.testing.assert_close(sync_discriminator_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3)), 2 * ln2)
