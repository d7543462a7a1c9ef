"""Zheng et al. 2020's word detector Det_w (`models.zheng.word_detector`) and mutual-information estimator Est_m with
the temporal residual loss (`models.zheng.mi`): shapes at both presets and refused shapes; a frozen detector that
stays in train mode, equals its eval mode and passes gradient to its input only; the detector learning separable
words; the DV bound and MINE's moving-average correction (its value, its gradient, its buffer surviving a
state_dict); the estimator telling correlated pairs from shuffled ones and finding nothing in independent ones; and
L_tr in both forms."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.zheng.mi import (MIEstimator, MIEstimatorConfig, MovingAverageDV, deltas, dv_bound, shuffled,
                             temporal_residual_loss)
from models.zheng.word_detector import WordDetector, WordDetectorConfig, freeze_for_loss


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("preset", ["paper", "small"])
def test_shapes_at_both_presets(preset):
    torch.manual_seed(0)
    detector = WordDetector(WordDetectorConfig.preset(preset), n_words=500)
    estimator = MIEstimator(MIEstimatorConfig.preset(preset))
    assert detector(torch.randn(2, 25, 136) * 0.1).shape == (2, 500)
    assert detector(torch.randn(3, 7, 136) * 0.1).shape == (3, 500)  # T is free
    assert estimator(torch.randn(6, 28, 12), torch.randn(6, 136) * 0.01).shape == (6,)
    if preset == "paper":  # the sizes the docstrings state
        assert round(n_params(detector) / 1e6, 2) == 1.12 and round(n_params(estimator) / 1e6, 2) == 0.82
    else:
        assert max(n_params(detector), n_params(estimator)) < 2e5  # CPU sizes
    for cfg in (detector.cfg, estimator.cfg):
        assert type(cfg).from_dict(cfg.to_dict()) == cfg  # checkpoints store the dict
    with pytest.raises(KeyError):
        WordDetectorConfig.preset("large")
    with pytest.raises(KeyError):
        MIEstimatorConfig.preset("large")


def test_bad_shapes_are_refused():
    detector = WordDetector(WordDetectorConfig.preset("small"), n_words=5)
    estimator = MIEstimator(MIEstimatorConfig.preset("small"))
    for bad in (torch.zeros(25, 136), torch.zeros(2, 25, 68, 2), torch.zeros(2, 25, 134), torch.zeros(2, 0, 136)):
        with pytest.raises(ValueError, match="landmarks must be"):
            detector(bad)
    with pytest.raises(ValueError, match="n_words"):
        WordDetector(WordDetectorConfig(), n_words=1)
    with pytest.raises(ValueError, match="d_audio must be"):
        estimator(torch.zeros(4, 12, 28), torch.zeros(4, 136))
    with pytest.raises(ValueError, match="d_landmarks must be"):
        estimator(torch.zeros(4, 28, 12), torch.zeros(3, 136))
    with pytest.raises(ValueError, match="d_landmarks must be"):
        estimator(torch.zeros(4, 28, 12), torch.zeros(4, 68, 2))
    with pytest.raises(ValueError, match="T >= 2"):
        deltas(torch.zeros(2, 1, 136))
    with pytest.raises(ValueError, match="must be"):
        shuffled(torch.zeros(8, 136))
    with pytest.raises(ValueError, match="scores"):
        dv_bound(torch.zeros(4, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="scores"):
        MovingAverageDV()(torch.zeros(4), torch.zeros(0))
    with pytest.raises(ValueError, match="alpha"):
        MovingAverageDV(alpha=0.0)


def test_the_frozen_detector_passes_gradient_to_its_input_only_and_equals_its_eval_mode():
    torch.manual_seed(0)
    detector = WordDetector(WordDetectorConfig(hidden=32, fc=32, dropout=0.5), n_words=5)
    x = torch.randn(4, 25, 136) * 0.1
    assert not torch.equal(detector(x), detector(x))  # before: train mode drops out between the LSTM layers
    assert freeze_for_loss(detector) is detector
    assert detector.training and detector.lstm.dropout == 0.0
    assert not any(p.requires_grad for p in detector.parameters())
    train_out = detector(x)
    torch.testing.assert_close(detector(x), train_out, rtol=0, atol=0)  # deterministic
    eval_out = detector.eval()(x)  # with autograd on, as train_out (CPU's no-grad LSTM kernel rounds differently)
    detector.train()
    torch.testing.assert_close(train_out, eval_out, rtol=0, atol=0)

    x.requires_grad_(True)
    F.cross_entropy(detector(x), torch.tensor([0, 1, 2, 3])).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in detector.parameters())


def test_freezing_refuses_running_statistics():
    with pytest.raises(ValueError, match="BatchNorm1d"):
        freeze_for_loss(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)))
    freeze_for_loss(torch.nn.BatchNorm1d(4, track_running_stats=False))  # batch statistics in both modes: allowed


def word_clips(n: int, templates: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n clips of 25 frames: a random face, plus its word's 136-d template scaled by a bump centred on frame 12 (zero
    by the last frame, so the LSTM must remember), plus noise. -> (n, 25, 136), labels (n,)."""
    words = torch.randint(len(templates), (n,), generator=g)
    bump = torch.exp(-0.5 * ((torch.arange(25.0) - 12) / 3) ** 2)  # (25,); 3e-4 at t = 24
    face = 0.3 * torch.randn(n, 1, 136, generator=g)
    return face + bump[None, :, None] * templates[words][:, None] + 0.05 * torch.randn(n, 25, 136, generator=g), words


def test_the_word_detector_learns_separable_words():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    templates = 0.3 * torch.randn(5, 136, generator=g)
    detector = WordDetector(WordDetectorConfig.preset("small"), n_words=5)
    opt = torch.optim.Adam(detector.parameters(), 1e-2)
    for _ in range(80):
        x, y = word_clips(32, templates, g)
        loss = F.cross_entropy(detector(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = word_clips(256, templates, g)
    with torch.no_grad():
        accuracy = (detector.eval()(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.9, accuracy


def test_deltas_and_shuffled():
    x = torch.randn(2, 5, 3)
    d = deltas(x)
    assert d.shape == (2, 4, 3)
    torch.testing.assert_close(d[1, 2], x[1, 3] - x[1, 2])
    rows = torch.arange(3 * 4).float()[:, None].expand(-1, 136).reshape(3, 4, 136)  # row id in every column
    out = shuffled(rows, torch.Generator().manual_seed(0))
    assert out.shape == rows.shape
    assert torch.equal(out[..., 0].flatten().sort().values, rows[..., 0].flatten())  # a permutation of the rows
    assert torch.equal(out, shuffled(rows, torch.Generator().manual_seed(0)))  # the generator decides
    assert ((out[0, :, 0] >= 4).any() and not torch.equal(out, rows))  # rows cross clips, not only frames


def test_dv_bound():
    assert dv_bound(torch.full((8,), 3.0), torch.full((8,), 3.0)).item() == pytest.approx(0.0, abs=1e-6)
    joint, marginal = torch.randn(16), torch.randn(12)
    naive = joint.mean() - marginal.exp().mean().log()
    torch.testing.assert_close(dv_bound(joint, marginal), naive)
    assert dv_bound(torch.zeros(4), torch.full((4,), 1000.0)).item() == pytest.approx(-1000.0)  # no overflow


def test_moving_average_dv_value_gradient_and_state():
    dv = MovingAverageDV(alpha=0.5)
    assert dv.ema.isnan()  # not initialised before the first call
    joint, m1 = torch.randn(8), torch.randn(8, requires_grad=True)
    loss, estimate = dv(joint, m1)
    torch.testing.assert_close(dv.ema, m1.detach().exp().mean())  # first call: the batch itself
    torch.testing.assert_close(estimate, dv_bound(joint, m1.detach()))  # logged: the plain DV bound
    torch.testing.assert_close(loss, -estimate)
    assert not estimate.requires_grad
    loss.backward()
    plain = torch.autograd.grad(-dv_bound(joint, m1), m1)[0]
    torch.testing.assert_close(m1.grad, plain)  # ema = batch: the corrected gradient is the plain one

    m2 = torch.randn(8, requires_grad=True) + 1.0
    m2.retain_grad()
    ema = 0.5 * dv.ema + 0.5 * m2.detach().exp().mean()
    loss, estimate = dv(joint, m2)
    torch.testing.assert_close(dv.ema, ema)
    torch.testing.assert_close(loss, -estimate)  # the value stays the bound
    loss.backward()
    torch.testing.assert_close(m2.grad, m2.detach().exp() / (8 * ema))  # MINE §3.2: the denominator is the average

    resumed = MovingAverageDV(alpha=0.5)
    resumed.load_state_dict(dv.state_dict())
    torch.testing.assert_close(resumed.ema, dv.ema)
    m3 = torch.randn(8)
    dv(joint, m3), resumed(joint, m3)
    torch.testing.assert_close(resumed.ema, dv.ema)  # the average continues where it was
    before = dv.ema.clone()
    dv.eval()(joint, torch.randn(8) + 5)
    torch.testing.assert_close(dv.ema, before)  # eval mode leaves it alone


def gaussian_pairs(n: int, W: torch.Tensor | None, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """ΔA ~ N(0, 1) (n, 28, 12); ΔL = W·flatten(ΔA) + 0.1·noise (n, 136), or independent N(0, 1) if W is None."""
    a = torch.randn(n, 28, 12, generator=g)
    if W is None:
        return a, torch.randn(n, 136, generator=g)
    return a, a.flatten(1) @ W.T + 0.1 * torch.randn(n, 136, generator=g)


def train_estimator(W: torch.Tensor | None, steps: int = 150) -> tuple[torch.Tensor, torch.Tensor]:
    """Train a small Est_m with MovingAverageDV; -> scores on fresh joint pairs and on their shuffles, (1024,) each."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    estimator, dv = MIEstimator(MIEstimatorConfig.preset("small")), MovingAverageDV()
    opt = torch.optim.Adam(estimator.parameters(), 3e-3)
    for _ in range(steps):
        a, l = gaussian_pairs(64, W, g)
        loss, _ = dv(estimator(a, l), estimator(a, shuffled(l[None], g)[0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    a, l = gaussian_pairs(1024, W, g)
    with torch.no_grad():
        return estimator(a, l), estimator(a, shuffled(l[None], g)[0])


def test_the_estimator_tells_correlated_pairs_from_shuffled_ones():
    W = torch.randn(136, 336, generator=torch.Generator().manual_seed(2)) / math.sqrt(336)
    joint, marginal = train_estimator(W)
    assert joint.mean() - marginal.mean() > 1.0
    assert dv_bound(joint, marginal) > 0.5  # nats, on held-out pairs


def test_the_estimator_finds_nothing_in_independent_pairs():
    joint, marginal = train_estimator(None, steps=100)
    assert abs(dv_bound(joint, marginal).item()) < 0.1


@pytest.mark.parametrize("form", ["as_printed", "dv"])
def test_temporal_residual_loss(form):
    torch.manual_seed(0)
    estimator = freeze_for_loss(MIEstimator(MIEstimatorConfig.preset("small")))
    audio, landmarks = torch.randn(2, 5, 28, 12), (torch.randn(2, 5, 136) * 0.01).requires_grad_(True)
    d_audio, d_landmarks = deltas(audio), deltas(landmarks)  # (2, 4, 28, 12), (2, 4, 136)
    loss = temporal_residual_loss(estimator, d_audio, d_landmarks, form, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    if form == "as_printed":  # Eq. 6
        torch.testing.assert_close(loss, -estimator(d_audio.flatten(0, 1), d_landmarks.flatten(0, 1)).mean())
    loss.backward()
    assert landmarks.grad is not None and landmarks.grad.abs().sum() > 0
    assert all(p.grad is None for p in estimator.parameters())
    with pytest.raises(ValueError, match="unknown form"):
        temporal_residual_loss(estimator, d_audio, d_landmarks, "mine")
    with pytest.raises(ValueError, match="same B"):
        temporal_residual_loss(estimator, d_audio, d_landmarks[:, 1:], form)
