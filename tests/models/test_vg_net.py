"""VG-net shapes, ranges, Eq. 3 blending and ablation switches (Chen et al. CVPR 2019, Sec. 3.2-3.3): no store needed."""
import pytest
import torch

from models.atvgnet import VGNet, VGNetConfig

# the small preset at 32 pixels: same wiring, fast enough for many forward passes on CPU
TINY = VGNetConfig.preset("small").__class__(**{**VGNetConfig.preset("small").to_dict(), "image_size": 32})


def lively(model: VGNet, calibrate: bool = True) -> VGNet:
    """PyTorch's default init instead of the paper's N(0, 0.02), and BatchNorm running statistics calibrated on a few
    random batches: at init the eval-mode signals otherwise shrink layer by layer until the outputs are the heads'
    biases; the wiring tests need signals that propagate. Returns the model in train mode."""
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            m.reset_parameters()
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for seed in range(2 if calibrate else 0):
            model(*inputs(2, 2, model.cfg.image_size, seed=100 + seed))
    return model


def inputs(B: int, T: int, S: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    face = torch.rand(B, 3, S, S, generator=g) * 2 - 1
    return face, torch.rand(B, T, 136, generator=g) * 2 - 1, torch.rand(B, 136, generator=g) * 2 - 1


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_preset_size_and_shapes():
    torch.manual_seed(0)
    cfg = VGNetConfig.preset("paper")
    assert cfg == VGNetConfig()
    model = VGNet(cfg).eval()
    assert n_params(model) == 58_355_781  # the authors' VG_net (lelechen63/ATVGnet code/models.py), every tensor
    assert model.temporal.c_hidden == 512 and model.temporal.conv_x.in_channels == 128
    assert model.temporal.conv_x.dilation == (2, 2) and model.head.kernel_size == (7, 7) and model.head.out_channels == 4
    with torch.no_grad():
        out = model.forward_all(*inputs(1, 2, 128))
    assert out["frames"].shape == (1, 2, 3, 128, 128) and out["frames"].dtype == torch.float32
    assert out["attention"].shape == (1, 2, 1, 128, 128)
    assert out["motion"].shape == (1, 2, 3, 128, 128)
    assert out["landmark_attention"].shape == (1, 2, 1, 32, 32)


def test_small_preset_shapes_and_ranges():
    torch.manual_seed(0)
    model = lively(VGNet(VGNetConfig.preset("small"))).eval()
    assert 1e5 < n_params(model) < 1e6  # 0.41 M
    face, lmk, ex = inputs(2, 16, 128)
    with torch.no_grad():
        out = model.forward_all(face, lmk * 3, ex)  # larger inputs push the heads towards saturation
    frames, att = out["frames"], out["attention"]
    assert frames.shape == (2, 16, 3, 128, 128) and att.shape == (2, 16, 1, 128, 128)
    assert att.min() >= 0 and att.max() <= 1 and frames.min() >= -1 and frames.max() <= 1
    assert out["motion"].abs().max() <= 1 and att.std() > 0
    la = out["landmark_attention"]
    assert la.shape == (2, 16, 1, 32, 32) and la.min() >= 0 and la.max() <= 1


def test_forward_returns_frames_and_attention_of_forward_all():
    torch.manual_seed(0)
    model = lively(VGNet(TINY)).eval()
    x = inputs(2, 3, 32)
    with torch.no_grad():
        frames, att = model(*x)
        out = model.forward_all(*x)
    assert torch.equal(frames, out["frames"]) and torch.equal(att, out["attention"])
    # Eq. 3: frame = alpha * m + (1 - alpha) * example, the example broadcast over T
    blend = out["attention"] * out["motion"] + (1 - out["attention"]) * x[0].unsqueeze(1)
    assert torch.allclose(frames, blend, atol=1e-6)


def test_zero_attention_returns_the_example_and_full_attention_the_motion():
    torch.manual_seed(0)
    model = lively(VGNet(TINY)).eval()
    face, lmk, ex = inputs(2, 3, 32)
    with torch.no_grad():
        model.head.weight[3].zero_()  # channel 3 is the attention logit
        model.head.bias[3] = -1e4  # sigmoid(-1e4) == 0 exactly in float32
        out = model.forward_all(face, lmk, ex)
        assert float(out["attention"].max()) == 0.0
        assert torch.equal(out["frames"], face.unsqueeze(1).expand(2, 3, 3, 32, 32))
        model.head.bias[3] = 1e4  # alpha == 1: the motion image itself
        out = model.forward_all(face, lmk, ex)
        assert torch.equal(out["frames"], out["motion"])


def test_without_dma_frames_are_the_motion():
    torch.manual_seed(0)
    cfg = VGNetConfig.from_dict({**TINY.to_dict(), "use_dma": False})
    model = lively(VGNet(cfg)).eval()
    assert model.head.out_channels == 3 and n_params(model) < n_params(VGNet(TINY))
    with torch.no_grad():
        out = model.forward_all(*inputs(2, 3, 32))
    assert torch.equal(out["frames"], out["motion"])
    assert torch.equal(out["attention"], torch.ones(2, 3, 1, 32, 32))


@pytest.mark.parametrize("use_mmcrnn", [True, False])
def test_mmcrnn_carries_information_over_time(use_mmcrnn):
    torch.manual_seed(0)
    cfg = VGNetConfig.from_dict({**TINY.to_dict(), "use_mmcrnn": use_mmcrnn})
    model = lively(VGNet(cfg)).eval()
    face, lmk, ex = inputs(2, 6, 32)
    changed = lmk.clone()
    changed[:, 2] += 1.0  # move the landmarks of frame 2 only
    with torch.no_grad():
        a, _ = model(face, lmk, ex)
        b, _ = model(face, changed, ex)
    delta = (a - b).abs().flatten(2).amax(dim=2).amin(dim=0)  # (T,): the smallest change over the batch
    assert torch.all(delta[:2] == 0)  # causal either way: earlier frames never change
    assert delta[2] > 1e-4
    if use_mmcrnn:
        assert torch.all(delta[3:] > 1e-6)  # the ConvGRU carries frame 2 forward
    else:
        assert torch.all(delta[3:] == 0)  # per-frame decoding: later frames do not see frame 2


def test_example_inputs_condition_every_frame():
    torch.manual_seed(0)
    model = lively(VGNet(TINY)).eval()
    face, lmk, ex = inputs(2, 3, 32)
    with torch.no_grad():
        a, _ = model(face, lmk, ex)
        b, _ = model(face, lmk, ex + 0.5)
        c, _ = model(-face, lmk, ex)
        assert (a - b).abs().flatten(2).amax(dim=2).min() > 1e-6
        assert (a - c).abs().flatten(2).amax(dim=2).min() > 1e-6
        # eval mode: a sample's output does not depend on the rest of the batch
        assert torch.allclose(model(face[:1], lmk[:1], ex[:1])[0], a[:1], atol=1e-5)


@pytest.mark.parametrize("switches", [{}, {"use_dma": False}, {"use_mmcrnn": False}, {"dropout": 0.5}])
def test_every_parameter_gets_a_gradient(switches):
    torch.manual_seed(0)
    model = lively(VGNet(VGNetConfig.from_dict({**TINY.to_dict(), **switches})), calibrate=False).train()
    frames, att = model(*inputs(2, 2, 32))
    (frames.pow(2).mean() + att.mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


def test_paper_init():
    torch.manual_seed(0)
    model = VGNet(VGNetConfig.preset("small"))
    w = model.decoder1[0].block[0].weight.detach()
    assert abs(float(w.detach().std()) - 0.02) < 0.003 and float(model.head.bias.detach().abs().max()) == 0.0


def test_shape_errors():
    model = VGNet(TINY)
    face, lmk, ex = inputs(2, 3, 32)
    with pytest.raises(ValueError):
        model(face[:, :, :16], lmk, ex)
    with pytest.raises(ValueError):
        model(face, lmk[:1], ex)
    with pytest.raises(ValueError):
        model(face, lmk[..., :134], ex)
    with pytest.raises(ValueError):
        model(face, lmk, ex[:, :10])
    with pytest.raises(ValueError):
        VGNetConfig(image_size=100)


def test_config_round_trip_and_presets():
    for name in ("paper", "small"):
        cfg = VGNetConfig.preset(name)
        assert VGNetConfig.from_dict(cfg.to_dict()) == cfg
        assert all(isinstance(v, (int, float, bool)) for v in cfg.to_dict().values())
    with pytest.raises(KeyError):
        VGNetConfig.preset("huge")
    with pytest.raises(TypeError):
        VGNetConfig.from_dict({"nope": 1})


def test_conv_gru_one_step_matches_a_hand_computed_update_on_3x3():
    """The authors' cell (convolutional_rnn GRUCell, as torch.nn.GRU): the reset gate multiplies the hidden-side
    convolution's output, bias included: n = tanh(W_xn*x + b_xn + r * (W_hn*h + b_hn)). Two steps from h0 = 0, so the
    second step's hidden convolution sees a non-zero h; every 3x3 convolution is written out by hand here."""
    from models.atvgnet.vg_net import ConvGRU

    torch.manual_seed(0)
    gru = ConvGRU(1, 1, dilation=1).double()
    with torch.no_grad():
        for p in gru.parameters():
            p.copy_(torch.randn_like(p) * 0.7)
    x = torch.randn(1, 2, 1, 3, 3, dtype=torch.float64)

    def conv(inp, weight, bias):  # 3x3, zero padding 1, one input channel: a hand-written cross-correlation
        padded = torch.nn.functional.pad(inp, (1, 1, 1, 1))
        return torch.stack([torch.stack([(padded[i:i + 3, j:j + 3] * weight).sum() + bias for j in range(3)])
                            for i in range(3)])

    wx, bx, wh, bh = gru.conv_x.weight[:, 0], gru.conv_x.bias, gru.conv_h.weight[:, 0], gru.conv_h.bias
    h = torch.zeros(3, 3, dtype=torch.float64)
    expected = []
    for t in range(2):
        gx = [conv(x[0, t, 0], wx[k], bx[k]) for k in range(3)]  # r, z, n parts of the input side
        gh = [conv(h, wh[k], bh[k]) for k in range(3)]  # the same of the hidden side
        r, z = torch.sigmoid(gx[0] + gh[0]), torch.sigmoid(gx[1] + gh[1])
        n = torch.tanh(gx[2] + r * gh[2])
        h = (1 - z) * n + z * h
        expected.append(h)
    with torch.no_grad():
        out = gru(x)[0, :, 0]  # (2, 3, 3)
    torch.testing.assert_close(out, torch.stack(expected), rtol=0, atol=1e-12)
    # the form before issue 15 (reset before the hidden convolution) gives another first step: b_hn is gated
    first_n_without_gating = torch.tanh(conv(x[0, 0, 0], wx[2], bx[2]) + bh[2])
    first_h = (1 - torch.sigmoid(conv(x[0, 0, 0], wx[1], bx[1]) + bh[1])) * first_n_without_gating
    assert (out[0] - first_h).abs().max() > 1e-3


def test_weights_of_the_older_convgru_are_refused_with_what_to_do(tmp_path):
    """A VG-net file written before the ConvGRU took the authors' form (no hidden-side bias) is refused with its path
    and the advice to retrain, not with torch's RuntimeError."""
    from models.atvgnet.inference import load_vgnet
    from models.weights import WEIGHTS_FORMAT

    cfg = VGNetConfig.preset("small")
    state = {k: v for k, v in VGNet(cfg).state_dict().items() if k != "temporal.conv_h.bias"}
    path = tmp_path / "vgnet.pt"
    torch.save({"format": WEIGHTS_FORMAT, "system": "atvgnet", "stage": "vgnet", "step": 1,
                "modules": {"generator": state}, "config": {"generator": cfg.to_dict()}, "extra": {},
                "store_dir": None}, path)
    with pytest.raises(ValueError, match=r"vgnet\.pt: its VG-net weights do not fit .*retrain.*temporal\.conv_h\.bias"):
        load_vgnet(path)
