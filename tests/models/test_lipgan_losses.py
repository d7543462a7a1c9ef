"""The lip GAN's losses (`models.lipgan.losses`, Chen et al. 2018 Eq. 1–4): the paper's weights, and each Table 2
switch removing exactly its term (its input then gets no gradient from the generator's loss)."""
from __future__ import annotations

import math

import pytest
import torch

from models.lipgan.losses import LipGANLossConfig, corr_loss, discriminator_loss, generator_loss


def terms(requires_grad=True):
    g = torch.Generator().manual_seed(0)
    t = {name: torch.randn(shape, generator=g, requires_grad=requires_grad) for name, shape in {
        "fake": (2, 3, 4, 8, 8), "fake_logit": (2,), "a": (2, 3), "b_real": (2, 3), "b_fake": (2, 3),
        "perceptual_fake": (2, 5, 2, 2)}.items()}
    t["real"] = torch.rand(2, 3, 4, 8, 8) * 2 - 1
    t["perceptual_real"] = torch.randn(2, 5, 2, 2)
    return t


def g_loss(t, cfg):
    corr = corr_loss(t["a"], t["b_real"], t["b_fake"], cfg) if cfg.corr != "none" else None
    return generator_loss(t["fake"], t["real"], fake_logit=t["fake_logit"], corr=corr,
                          perceptual_fake=t["perceptual_fake"], perceptual_real=t["perceptual_real"], cfg=cfg)


def test_the_full_model_weights():
    t, cfg = terms(), LipGANLossConfig()
    out = g_loss(t, cfg)
    assert set(out) == {"gan", "corr", "perceptual", "pixel", "total"}
    expected = out["gan"] + out["corr"] + out["perceptual"] + 0.5 * out["pixel"]
    torch.testing.assert_close(out["total"], expected)
    d = discriminator_loss(torch.full((2,), 20.0), torch.full((2,), -20.0), torch.full((2,), -20.0), cfg)
    assert d["total"] < 1e-6  # a perfect D: real 1, generated 0, mismatched 0
    d = discriminator_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), cfg)
    assert math.isclose(d["total"].item(), 2 * math.log(2), rel_tol=1e-6)  # 1 + 0.5 + 0.5 halves of log 2


@pytest.mark.parametrize("switch,term,input_name", [
    ({"use_gan": False}, "gan", "fake_logit"),
    ({"use_perceptual": False}, "perceptual", "perceptual_fake"),
    ({"corr": "none"}, "corr", "a"),
    ({"fake_corr": False}, None, "b_fake"),
])
def test_a_switched_off_term_is_gone_and_its_input_gets_no_gradient(switch, term, input_name):
    t = terms()
    out = g_loss(t, LipGANLossConfig(**switch))
    if term:
        assert term not in out
    out["total"].backward()
    assert t[input_name].grad is None
    assert t["fake"].grad is not None  # the L1 term still trains the generator


def test_without_the_pixel_term_the_l1_is_gone():
    t = terms()
    full, no_pixel = g_loss(t, LipGANLossConfig()), g_loss(t, LipGANLossConfig(use_pixel=False))
    assert "pixel" not in no_pixel
    torch.testing.assert_close(full["total"] - 0.5 * full["pixel"], no_pixel["total"])


def test_without_mismatched_negatives_d_sees_real_and_generated_only():
    cfg = LipGANLossConfig(mismatch_negatives=False)
    out = discriminator_loss(torch.zeros(2), torch.zeros(2), None, cfg)
    assert "mismatch" not in out and math.isclose(out["total"].item(), 2 * math.log(2), rel_tol=1e-6)
    with pytest.raises(ValueError, match="mismatched pair"):
        discriminator_loss(torch.zeros(2), torch.zeros(2), None, LipGANLossConfig())


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="corr must be"):
        LipGANLossConfig(corr="cosine")
    with pytest.raises(ValueError, match="switched off"):
        LipGANLossConfig(use_gan=False, use_pixel=False, use_perceptual=False, corr="none")
