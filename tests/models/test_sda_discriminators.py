"""The Vougioukas et al. 2019 discriminators (`models.sda.discriminators`, our designs): the shapes each takes and
gives, at both presets, and the sequence D's reading of each clip's own last frame in a padded batch."""
from __future__ import annotations

import pytest
import torch

from models.sda.discriminators import (DiscriminatorsConfig, FrameDiscriminator, SequenceDiscriminator,
                                       SyncDiscriminator)
from models.sda.generator import WINDOW


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("preset", ["paper", "small"])
def test_each_discriminator_gives_one_logit_per_sample(preset):
    torch.manual_seed(0)
    cfg = DiscriminatorsConfig.preset(preset)
    faces, audio = torch.rand(2, 4, 3, 128, 96) * 2 - 1, torch.randn(2, 4, WINDOW) * 0.1
    frame_d, sequence_d, sync_d = FrameDiscriminator(cfg), SequenceDiscriminator(cfg), SyncDiscriminator(cfg)
    assert frame_d(faces[:, 0], faces[:, 1]).shape == (2,)
    assert sequence_d(faces, audio).shape == (2,)
    mouths = faces[:, :, :, 64:].transpose(1, 2)[:, :, :1].expand(-1, -1, 5, -1, -1)  # lower halves, 5 frames
    assert mouths.shape == (2, 3, 5, 64, 96)
    logit, distance = sync_d(mouths, audio[:, 0]), sync_d.distance(mouths, audio[:, 0])
    assert logit.shape == distance.shape == (2,) and (distance >= 0).all()
    if preset == "small":
        assert max(map(n_params, (frame_d, sequence_d, sync_d))) < 2e6  # CPU sizes


def test_the_sequence_d_reads_each_clips_own_last_frame():
    torch.manual_seed(0)
    d = SequenceDiscriminator(DiscriminatorsConfig.preset("small")).eval()
    faces, audio = torch.rand(2, 5, 3, 128, 96) * 2 - 1, torch.randn(2, 5, WINDOW) * 0.1
    with torch.no_grad():
        padded = d(faces, audio, lengths=torch.tensor([5, 3]))
        alone = d(faces[1:, :3], audio[1:, :3])
        changed = faces.clone()
        changed[1, 3:] = 0  # frames past clip 1's end
        again = d(changed, audio, lengths=torch.tensor([5, 3]))
    torch.testing.assert_close(padded[1], alone[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(padded, again)


def test_bad_inputs_are_refused():
    d = SyncDiscriminator(DiscriminatorsConfig.preset("small"))
    with pytest.raises(ValueError, match="need mouths"):
        d(torch.zeros(1, 3, 4, 64, 96), torch.zeros(1, WINDOW))
    with pytest.raises(ValueError, match="image_size"):
        DiscriminatorsConfig(image_size=(128, 100))
