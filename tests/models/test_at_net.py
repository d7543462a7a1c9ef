"""AT-net shapes and wiring (Chen et al. CVPR 2019, Sec. 3.1): no store needed."""
import pytest
import torch

from models.atvgnet import ATNet, ATNetConfig

SMALL = ATNetConfig(audio_channels=(8, 16, 16, 16, 32), audio_hidden=64, audio_features=32,
                    landmark_hidden=32, landmark_features=32, lstm_hidden=32)


def lively(model: ATNet) -> ATNet:
    """PyTorch's default init instead of the paper's N(0, 0.02), whose tiny weights make the small model's outputs
    nearly constant at init; the wiring tests need signals that propagate."""
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.reset_parameters()
    return model


def test_paper_init():
    torch.manual_seed(0)
    model = ATNet(SMALL)
    w = model.audio_encoder.fc[0].weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.002 and float(model.decoder.bias.detach().abs().max()) == 0.0


def test_paper_size_forward_shape():
    torch.manual_seed(0)
    model = ATNet().eval()
    # the public code's audio fc takes 1024 * 12 = 512 channels x 12 x 2 after the second pool
    assert model.audio_encoder.fc[0].in_features == 12288
    assert model.lstm.input_size == 768 and model.lstm.hidden_size == 256 and model.lstm.num_layers == 3
    with torch.no_grad():
        out = model(torch.randn(2, 6), torch.randn(2, 16, 28, 12))
    assert out.shape == (2, 16, 6) and out.dtype == torch.float32


def test_any_length_and_causal():
    torch.manual_seed(0)
    model = lively(ATNet(SMALL)).eval()
    example, mfcc = torch.randn(3, 6), torch.randn(3, 24, 28, 12)
    with torch.no_grad():
        out = model(example, mfcc)
        assert out.shape == (3, 24, 6)
        changed = mfcc.clone()
        changed[:, 12] += 5.0  # audio at step 12 changes outputs from step 12 on, never before (LSTM is causal)
        out2 = model(example, changed)
        assert torch.equal(out[:, :12], out2[:, :12])
        assert (out[:, 12] - out2[:, 12]).abs().max() > 1e-6  # float noise is ~1e-8
        out3 = model(example + 1.0, mfcc)  # the example landmarks condition every step
        assert (out3 - out).abs().amax(dim=2).min() > 1e-6
        # eval mode: a sample's output does not depend on the rest of the batch
        assert torch.allclose(model(example[:1], mfcc[:1]), out[:1], atol=1e-6)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = lively(ATNet(SMALL)).train()
    model(torch.randn(4, 6), torch.randn(4, 16, 28, 12)).pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


def test_shape_errors():
    model = ATNet(SMALL)
    with pytest.raises(ValueError):
        model(torch.randn(2, 5), torch.randn(2, 16, 28, 12))
    with pytest.raises(ValueError):
        model(torch.randn(2, 6), torch.randn(2, 16, 28, 13))
    with pytest.raises(ValueError):
        model(torch.randn(2, 6), torch.randn(3, 16, 28, 12))


def test_presets():
    assert ATNetConfig.preset("paper") == ATNetConfig()
    small = ATNet(ATNetConfig.preset("small")).eval()
    with torch.no_grad():
        assert small(torch.randn(2, 6), torch.randn(2, 16, 28, 12)).shape == (2, 16, 6)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in ATNet().parameters()) / 50
    with pytest.raises(KeyError):
        ATNetConfig.preset("huge")


def test_config_round_trip():
    assert ATNetConfig.from_dict(SMALL.to_dict()) == SMALL
    assert isinstance(SMALL.to_dict()["audio_channels"], list)
    with pytest.raises(TypeError):
        ATNetConfig.from_dict({"nope": 1})
