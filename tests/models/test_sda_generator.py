"""The Vougioukas et al. 2019 generator (`models.sda.generator`): the authors' sizes layer by layer, the audio
windows centred on their frames, the noise that varies the output, and packed variable-length batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.sda.generator import WINDOW, SDAGenerator, SDAGeneratorConfig, audio_windows


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_paper_preset_has_the_authors_sizes():
    torch.manual_seed(0)
    g = SDAGenerator(SDAGeneratorConfig.preset("paper")).eval()
    assert 50e6 < n_params(g) < 60e6, n_params(g)  # "about 55 M" (spec §2)
    x = torch.rand(1, 3, 128, 96) * 2 - 1
    z_id, skips = g.identity_encoder(x)
    assert z_id.shape == (1, 128) and z_id.abs().max() <= 1
    assert [tuple(s.shape[1:]) for s in skips] == [(64, 64, 48), (128, 32, 24), (256, 16, 12), (512, 8, 6),
                                                    (1024, 4, 3)]
    assert g.audio_encoder(torch.zeros(3, 1, WINDOW)).shape == (3, 256)
    assert g.content_rnn.num_layers == 2 and g.content_rnn.hidden_size == 256
    with torch.no_grad():
        frames = g(x, torch.zeros(1, 2, WINDOW))
    assert frames.shape == (1, 2, 3, 128, 96) and frames.abs().max() <= 1


def test_audio_windows_are_centred_on_their_frames():
    audio = np.zeros(640 * 10 + 100, np.int16)  # 10 frames and a bit: the bit is cut
    audio[640 * 4 + 320] = 32767  # the middle of frame 4
    w = audio_windows(audio, 10)
    assert w.shape == (10, WINDOW) and w.dtype == np.float32
    assert w[4, 1280 + 320] == pytest.approx(1.0)  # window t = padded[640 t : 640 t + 3200], 1280 zeros first
    assert np.flatnonzero(w.max(1)).tolist() == [2, 3, 4, 5, 6]  # 0.2 s windows: 2 frames either side
    assert audio_windows(audio[:1000], 3)[2].max() == 0  # short audio is zero-padded
    with pytest.raises(ValueError):
        audio_windows(audio, 0)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return SDAGenerator(SDAGeneratorConfig.preset("small")).eval()


def test_the_noise_varies_the_frames_and_a_fixed_seed_reproduces_them(small):
    x, audio = torch.rand(2, 3, 128, 96) * 2 - 1, torch.randn(2, 5, WINDOW) * 0.1
    with torch.no_grad():
        torch.manual_seed(1)
        a = small(x, audio)
        torch.manual_seed(1)
        b = small(x, audio)
        c = small(x, audio)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert small.noise_rnn.input_size == 10


def test_a_packed_batch_gives_each_clip_its_own_frames(small):
    torch.manual_seed(2)
    x, audio, noise = torch.rand(2, 3, 128, 96) * 2 - 1, torch.randn(2, 6, WINDOW) * 0.1, torch.randn(2, 6, 10)
    audio[1, 4:] = 0
    with torch.no_grad():
        both = small(x, audio, lengths=torch.tensor([6, 4]), noise=noise)
        alone = small(x[1:], audio[1:, :4], noise=noise[1:, :4])
    torch.testing.assert_close(both[1, :4], alone[0], rtol=1e-4, atol=1e-5)


def test_bad_shapes_and_configs_are_refused(small):
    with pytest.raises(ValueError, match="identity must be"):
        small(torch.zeros(1, 3, 128, 128), torch.zeros(1, 2, WINDOW))
    with pytest.raises(ValueError, match="audio must be"):
        small(torch.zeros(1, 3, 128, 96), torch.zeros(1, 2, 640))
    with pytest.raises(ValueError, match="image_size"):
        SDAGeneratorConfig(image_size=(96, 128))
    assert SDAGeneratorConfig.from_dict(SDAGeneratorConfig.preset("small").to_dict()) == \
        SDAGeneratorConfig.preset("small")


def test_without_unet_skips_the_decoder_never_reads_the_identity_maps():
    torch.manual_seed(3)
    g = SDAGenerator(SDAGeneratorConfig.preset("small")).eval()
    plain = SDAGenerator(SDAGeneratorConfig(**{**SDAGeneratorConfig.preset("small").to_dict(),
                                               "unet_skips": False, "image_size": (128, 96)})).eval()
    assert n_params(plain) < n_params(g)  # each block's first ConvT reads C, not 2C, channels
    latent = torch.randn(2, 32 + 64 + 10)
    maps = [torch.randn(2, 8 * 2**i, 64 // 2**i, 48 // 2**i) for i in range(5)]
    with torch.no_grad():
        assert torch.equal(plain.decode(latent, maps), plain.decode(latent, [torch.zeros_like(m) for m in maps]))
        assert not torch.allclose(g.decode(latent, maps), g.decode(latent, [torch.zeros_like(m) for m in maps]))


def test_the_noise_switch_and_the_static_generator():
    base = SDAGeneratorConfig.preset("small").to_dict()
    x, audio = torch.rand(1, 3, 128, 96) * 2 - 1, torch.randn(1, 6, WINDOW) * 0.1
    torch.manual_seed(4)
    white = SDAGenerator(SDAGeneratorConfig(**{**base, "noise": "white", "image_size": (128, 96)})).eval()
    assert white.noise_rnn is None and white.project[0].in_channels == 32 + 64 + 10
    static = SDAGenerator(SDAGeneratorConfig(**{**base, "noise": "off", "temporal": False,
                                                "image_size": (128, 96)})).eval()
    assert static.noise_rnn is None and static.content_rnn is None and static.project[0].in_channels == 32 + 64
    moved = audio.clone()
    moved[0, 3] += torch.randn(WINDOW) * 0.1  # only frame 3's window
    with torch.no_grad():
        n1, n2 = torch.randn(1, 6, 10), torch.randn(1, 6, 10)
        assert not torch.allclose(white(x, audio, noise=n1), white(x, audio, noise=n2))
        torch.testing.assert_close(static(x, audio, noise=n1), static(x, audio, noise=n2))  # no noise part
        changed = (static(x, audio) - static(x, moved)).abs().flatten(2).amax(2)[0]  # (T,)
        recurrent = (white(x, audio, noise=n1) - white(x, moved, noise=n1)).abs().flatten(2).amax(2)[0]
    assert changed[3] > 0 and changed[[0, 1, 2, 4, 5]].max() == 0  # static: each frame from its own window
    assert recurrent[4:].min() > 0  # the content GRU carries frame 3's audio forward
    with pytest.raises(ValueError, match="noise"):
        SDAGeneratorConfig(temporal=False)  # the noise GRU is a recurrence too
    with pytest.raises(ValueError, match="noise"):
        SDAGeneratorConfig(noise="pink")
