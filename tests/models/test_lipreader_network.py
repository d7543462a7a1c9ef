"""LipNet's network (`models.lipreader.network`) against shared/specs/vougioukas2019-sda.md §8 (Assael et al. 2016):
3 × [Conv3d k(3,5,5)/(3,5,5)/(3,3,3), 32/64/96, first stride (1,2,2), BN, ReLU, dropout, MaxPool(1,2,2)] → per-frame
flatten → BiGRU 256 × 2 → Linear(512 → 28) → log_softmax, one output per frame."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from models.lipreader.network import LipNet, LipReaderConfig


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_the_paper_preset_is_the_specs_network():
    cfg = LipReaderConfig.preset("paper")
    net = LipNet(cfg)
    convs = [m for m in net.stcnn if isinstance(m, nn.Conv3d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 32, (3, 5, 5), (1, 2, 2)), (32, 64, (3, 5, 5), (1, 1, 1)), (64, 96, (3, 3, 3), (1, 1, 1))]
    assert all(c.padding[0] == 1 and c.stride[0] == 1 for c in convs)  # time: never strided, same length
    kinds = [type(m) for m in net.stcnn]
    assert kinds == [nn.Conv3d, nn.BatchNorm3d, nn.ReLU, nn.Dropout3d, nn.MaxPool3d] * 3
    assert all(m.kernel_size == (1, 2, 2) for m in net.stcnn if isinstance(m, nn.MaxPool3d))
    assert [(g.input_size, g.hidden_size, g.bidirectional) for g in net.grus] == [(768, 256, True), (512, 256, True)]
    assert (net.fc.in_features, net.fc.out_features) == (512, 28)
    print(f"LipNet paper preset (32x64 RGB): {n_params(net):,} parameters")
    assert 3.0e6 < n_params(net) < 3.2e6


@pytest.mark.parametrize("preset,T", [("paper", 75), ("paper", 1), ("small", 75), ("small", 7)])
def test_one_log_softmax_row_per_frame(preset, T):
    cfg = LipReaderConfig.preset(preset)
    net = LipNet(cfg).eval()
    video = torch.rand(2, T, cfg.channels, *cfg.size) * 2 - 1  # (B, T, C, H, W) in [-1, 1]
    with torch.no_grad():
        out = net(video)
    assert out.shape == (T, 2, 28) and out.dtype == torch.float32
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(T, 2))


def test_the_upsampled_50x100_option_and_the_small_preset():
    big = LipNet(LipReaderConfig(size=(50, 100)))
    assert big.cfg.features == 96 * 3 * 6 and big.grus[0].input_size == 1728
    assert big(torch.zeros(1, 4, 3, 50, 100)).shape == (4, 1, 28)
    small = LipNet(LipReaderConfig.preset("small"))
    assert small.cfg.channels == 1 and n_params(small) < 0.1 * n_params(LipNet(LipReaderConfig.preset("paper")))
    with pytest.raises(ValueError, match=r"\(B, T, 1, 16, 32\)"):
        small(torch.zeros(1, 4, 3, 16, 32))


def test_packed_lengths_make_the_padding_irrelevant():
    """With lengths, a clip's backward GRU starts at its last real frame: how much zero padding follows changes
    nothing (in eval mode); without them the padding leaks into every frame's output."""
    torch.manual_seed(0)
    cfg = LipReaderConfig.preset("small")
    net = LipNet(cfg).eval()
    clip = torch.rand(1, 10, 1, *cfg.size) * 2 - 1
    short = torch.cat([clip, torch.zeros(1, 2, 1, *cfg.size)], 1)  # 12 frames
    long = torch.cat([clip, torch.zeros(1, 9, 1, *cfg.size)], 1)  # 19 frames
    with torch.no_grad():
        a = net(torch.cat([short, short]), torch.tensor([10, 12]))[:10, 0]
        b = net(torch.cat([long, long]), torch.tensor([10, 19]))[:10, 0]
        c = net(long)[:10, 0]
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c, atol=1e-4)


def test_config_checks_and_presets():
    assert LipReaderConfig.from_dict(LipReaderConfig.preset("small").to_dict()) == LipReaderConfig.preset("small")
    with pytest.raises(ValueError):
        LipReaderConfig(size=(8, 64))
    with pytest.raises(KeyError, match="paper, small"):
        LipReaderConfig.preset("huge")
