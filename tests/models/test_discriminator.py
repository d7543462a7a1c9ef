"""Regression discriminator shapes and wiring (Chen et al. CVPR 2019, Sec. 3.4): no store needed."""
import pytest
import torch

from models.atvgnet import DiscriminatorConfig, RegressionDiscriminator

TINY = DiscriminatorConfig.from_dict({**DiscriminatorConfig.preset("small").to_dict(), "image_size": 32})


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def inputs(B: int, T: int, S: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, T, 3, S, S, generator=g) * 2 - 1, torch.rand(B, 136, generator=g) * 2 - 1


def test_paper_preset_size_and_shapes():
    torch.manual_seed(0)
    assert DiscriminatorConfig.preset("paper") == DiscriminatorConfig()
    model = RegressionDiscriminator().eval()
    assert 1.5e7 < n_params(model) < 3e7  # 20.9 M, of which the Linear(512*8*8, 512) is 16.8 M
    assert model.image_fc[0].in_features == 32768 and model.lstm.input_size == 1024
    frames, ex = inputs(1, 2, 128)
    with torch.no_grad():
        score, lmk = model(frames, ex)
    assert score.shape == (1,) and lmk.shape == (1, 2, 136) and score.dtype == lmk.dtype == torch.float32


def test_small_preset_shapes():
    torch.manual_seed(0)
    model = RegressionDiscriminator(DiscriminatorConfig.preset("small")).eval()
    assert 5e4 < n_params(model) < 1e6  # 0.25 M
    frames, ex = inputs(2, 16, 128)
    with torch.no_grad():
        score, lmk = model(frames, ex)
    assert score.shape == (2,) and lmk.shape == (2, 16, 136)
    # D_p is a tanh residual on the example landmarks
    assert ((lmk - ex.unsqueeze(1)).abs() <= 1).all()


def test_score_is_mean_of_per_frame_logits_and_t_is_free():
    torch.manual_seed(0)
    model = RegressionDiscriminator(TINY).eval()
    frames, ex = inputs(2, 5, 32)
    per_frame = []
    model.score_head.register_forward_hook(lambda m, i, o: per_frame.append(o))
    with torch.no_grad():
        score, lmk = model(frames, ex)
    assert lmk.shape == (2, 5, 136)
    assert torch.allclose(score, per_frame[0].squeeze(2).mean(dim=1))
    with torch.no_grad():  # eval mode: one clip's score does not depend on the rest of the batch
        assert torch.allclose(model(frames[:1], ex[:1])[0], score[:1], atol=1e-6)


def test_conditioned_on_frames_and_example_landmarks():
    torch.manual_seed(0)
    model = RegressionDiscriminator(TINY).eval()
    frames, ex = inputs(2, 4, 32)
    with torch.no_grad():
        s0, l0 = model(frames, ex)
        changed = frames.clone()
        changed[:, 3] = -changed[:, 3]
        s1, l1 = model(changed, ex)
        s2, l2 = model(frames, ex + 0.3)
    assert torch.equal(l0[:, :3], l1[:, :3])  # causal (LSTM): earlier frames' regressions do not change
    assert (l0[:, 3] - l1[:, 3]).abs().amax(dim=1).min() > 0 and (s0 - s1).abs().min() > 0
    assert (s0 - s2).abs().min() > 0 and (l0 - l2).abs().amax(dim=2).min() > 0


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = RegressionDiscriminator(TINY).train()
    frames, ex = inputs(2, 3, 32)
    score, lmk = model(frames.requires_grad_(), ex)
    (score.mean() + lmk.pow(2).mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing and frames.grad.abs().sum() > 0


def test_shape_errors():
    model = RegressionDiscriminator(TINY)
    frames, ex = inputs(2, 3, 32)
    with pytest.raises(ValueError):
        model(frames[0], ex)
    with pytest.raises(ValueError):
        model(frames[..., :16], ex)
    with pytest.raises(ValueError):
        model(frames, ex[:1])
    with pytest.raises(ValueError):
        DiscriminatorConfig(image_size=100)


def test_config_round_trip_and_presets():
    for name in ("paper", "small"):
        cfg = DiscriminatorConfig.preset(name)
        assert DiscriminatorConfig.from_dict(cfg.to_dict()) == cfg
        assert isinstance(cfg.to_dict()["channels"], list)
    with pytest.raises(KeyError):
        DiscriminatorConfig.preset("huge")
    with pytest.raises(TypeError):
        DiscriminatorConfig.from_dict({"nope": 1})


def test_lstm_input_is_landmarks_then_image_as_the_authors():
    """GL_Discriminator (lelechen63/ATVGnet code/models.py line 164) feeds the LSTM cat[landmark feature, image
    feature]: with the LSTM's weights on the first landmark_features inputs zeroed, the example landmarks no longer
    change the score; with those on the image part zeroed, the frames no longer do."""
    torch.manual_seed(0)
    model = RegressionDiscriminator(TINY).eval()
    k = TINY.landmark_features
    frames, ex = inputs(1, 3, 32)
    frames2, ex2 = inputs(1, 3, 32, seed=1)
    with torch.no_grad():
        w = model.lstm.weight_ih_l0
        saved = w.clone()
        w[:, :k] = 0  # landmark part off
        assert torch.allclose(model(frames, ex)[0], model(frames, ex2)[0], atol=1e-7)
        assert not torch.allclose(model(frames, ex)[0], model(frames2, ex)[0], atol=1e-5)
        w.copy_(saved)
        w[:, k:] = 0  # image part off
        assert torch.allclose(model(frames, ex)[0], model(frames2, ex)[0], atol=1e-7)
