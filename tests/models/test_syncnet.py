"""SyncNet shapes, input conventions and the official syncnet_v2 loader (no store needed).

The official file is not shipped (it is a 52 MB download from the authors); the loader is tested with weights this
test creates in the official layout: the names and shapes of joonson/syncnet_python `SyncNetModel.S`, written out
here from the public description, saved in PyTorch's old serialisation (the official file predates the zip format)
without `num_batches_tracked` entries (pre-0.4 files have none). Outputs are checked against a functional forward
written here from the same description (F.conv3d / F.batch_norm / F.max_pool3d with the official strides and
paddings), so the test checks the architecture, not just the key names.
"""
import math
import numpy as np
import pytest
import python_speech_features as psf
import torch
import torch.nn.functional as F

from models.syncnet import INT16_C0_OFFSET, SyncNet, SyncNetConfig, load_syncnet_v2

# official SyncNetModel.S: (index, out, in, kernel) of each conv; BatchNorm at index + 1; fc heads 512-512-1024
AUD_CONVS = [(0, 64, 1, (3, 3)), (4, 192, 64, (3, 3)), (8, 384, 192, (3, 3)), (11, 256, 384, (3, 3)),
             (14, 256, 256, (3, 3)), (18, 512, 256, (5, 4))]
LIP_CONVS = [(0, 96, 3, (5, 7, 7)), (4, 256, 96, (1, 5, 5)), (8, 256, 256, (1, 3, 3)), (11, 256, 256, (1, 3, 3)),
             (14, 256, 256, (1, 3, 3)), (18, 512, 256, (1, 6, 6))]


def official_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the official key names and shapes (no num_batches_tracked)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for net, convs in (("netcnnaud", AUD_CONVS), ("netcnnlip", LIP_CONVS)):
        for i, c_out, c_in, k in convs:
            fan_in = c_in * math.prod(k)
            state[f"{net}.{i}.weight"] = torch.randn(c_out, c_in, *k, generator=g) / math.sqrt(fan_in)
            state[f"{net}.{i}.bias"] = 0.1 * torch.randn(c_out, generator=g)
            state[f"{net}.{i + 1}.weight"] = 1 + 0.1 * torch.randn(c_out, generator=g)
            state[f"{net}.{i + 1}.bias"] = 0.1 * torch.randn(c_out, generator=g)
            state[f"{net}.{i + 1}.running_mean"] = 0.1 * torch.randn(c_out, generator=g)
            state[f"{net}.{i + 1}.running_var"] = 0.5 + torch.rand(c_out, generator=g)
    for net in ("netfcaud", "netfclip"):
        state[f"{net}.0.weight"] = torch.randn(512, 512, generator=g) / math.sqrt(512)
        state[f"{net}.0.bias"] = 0.1 * torch.randn(512, generator=g)
        state[f"{net}.1.weight"] = 1 + 0.1 * torch.randn(512, generator=g)
        state[f"{net}.1.bias"] = 0.1 * torch.randn(512, generator=g)
        state[f"{net}.1.running_mean"] = 0.1 * torch.randn(512, generator=g)
        state[f"{net}.1.running_var"] = 0.5 + torch.rand(512, generator=g)
        state[f"{net}.3.weight"] = torch.randn(1024, 512, generator=g) / math.sqrt(512)
        state[f"{net}.3.bias"] = 0.1 * torch.randn(1024, generator=g)
    return state


def bn(x, s, name):
    return F.batch_norm(x, s[f"{name}.running_mean"], s[f"{name}.running_var"], s[f"{name}.weight"],
                        s[f"{name}.bias"], training=False, eps=1e-5)


def reference_aud(s, x):
    """SyncNetModel.S.forward_aud, functionally: (B, 1, 13, 20) -> (B, 1024)."""
    def block(x, i, pad):
        return F.relu(bn(F.conv2d(x, s[f"netcnnaud.{i}.weight"], s[f"netcnnaud.{i}.bias"], padding=pad), s,
                         f"netcnnaud.{i + 1}"))
    x = block(x, 0, 1)
    x = F.max_pool2d(block(x, 4, 1), 3, (1, 2))
    x = F.max_pool2d(block(block(block(x, 8, 1), 11, 1), 14, 1), 3, 2)
    x = block(x, 18, 0).flatten(1)
    x = F.relu(bn(F.linear(x, s["netfcaud.0.weight"], s["netfcaud.0.bias"]), s, "netfcaud.1"))
    return F.linear(x, s["netfcaud.3.weight"], s["netfcaud.3.bias"])


def reference_lip(s, x):
    """SyncNetModel.S.forward_lip, functionally: (B, 3, 5, 224, 224) -> (B, 1024)."""
    def block(x, i, stride, pad):
        return F.relu(bn(F.conv3d(x, s[f"netcnnlip.{i}.weight"], s[f"netcnnlip.{i}.bias"], stride=stride,
                                  padding=pad), s, f"netcnnlip.{i + 1}"))
    x = F.max_pool3d(block(x, 0, (1, 2, 2), 0), (1, 3, 3), (1, 2, 2))
    x = F.max_pool3d(block(x, 4, (1, 2, 2), (0, 1, 1)), (1, 3, 3), (1, 2, 2), (0, 1, 1))
    x = block(block(block(x, 8, 1, (0, 1, 1)), 11, 1, (0, 1, 1)), 14, 1, (0, 1, 1))
    x = block(F.max_pool3d(x, (1, 3, 3), (1, 2, 2)), 18, 1, 0).flatten(1)
    x = F.relu(bn(F.linear(x, s["netfclip.0.weight"], s["netfclip.0.bias"]), s, "netfclip.1"))
    return F.linear(x, s["netfclip.3.weight"], s["netfclip.3.bias"])


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """(path, state) of a fake syncnet_v2.model: official keys, old serialisation."""
    state = official_state_dict()
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return path, state


def test_paper_preset_is_the_official_architecture():
    model = SyncNet(SyncNetConfig.preset("paper")).eval()
    assert SyncNetConfig.preset("syncnet_v2") == SyncNetConfig() == model.cfg
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert shapes == {k: tuple(v.shape) for k, v in official_state_dict().items()}
    assert sum(p.numel() for p in model.parameters()) == 13_631_616
    with torch.no_grad():
        # the official lip input: 5 frames of 224x224 (B, 3, 5, 224, 224); the conv stack ends at 1x1x1
        assert model.netcnnlip(torch.zeros(2, 3, 5, 224, 224)).shape == (2, 512, 1, 1, 1)
        assert model.netcnnaud(torch.zeros(2, 1, 13, 20)).shape == (2, 512, 1, 1)
        frames = torch.randint(0, 256, (2, 5, 128, 128, 3), dtype=torch.uint8)  # store face crops, resized inside
        video, audio = model(frames, torch.randn(2, 13, 20))
    assert video.shape == audio.shape == (2, 1024) and video.dtype == torch.float32


@pytest.mark.parametrize("color, channels", [("grey", 5), ("rgb", 15)])
def test_small_preset_stacks_frames_as_channels(color, channels):
    cfg = SyncNetConfig.from_dict({**SyncNetConfig.preset("small").to_dict(), "color": color})
    model = SyncNet(cfg).eval()
    assert model.netcnnlip[0].in_channels == channels  # the paper's (B, 5 or 15, H, W) input
    frames = torch.randint(0, 256, (3, 5, 64, 64, 3), dtype=torch.uint8)
    mfcc = torch.randn(3, 13, 20)
    with torch.no_grad():
        video, audio = model(frames, mfcc)
        assert video.shape == audio.shape == (3, 64)
        # eval mode: an item's embedding does not depend on the rest of the batch
        torch.testing.assert_close(model.embed_video(frames[1:2]), video[1:2], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.embed_audio(mfcc[1:2]), audio[1:2], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="frames"):
        model.embed_video(torch.zeros(2, 4, 64, 64, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="mfcc"):
        model.embed_audio(torch.zeros(2, 20, 13))


def test_frames_are_stacked_frame_major():
    model = SyncNet(SyncNetConfig.from_dict({**SyncNetConfig.preset("small").to_dict(), "color": "rgb"})).eval()
    seen = {}
    model.netcnnlip.register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))
    x = torch.arange(5, dtype=torch.float32).view(1, 1, 5, 1, 1).expand(1, 3, 5, 64, 64)  # value = frame index
    with torch.no_grad():
        model.forward_lip(x.contiguous())
    assert seen["x"][0, :, 0, 0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]


def test_prepare_video_conventions():
    frames = torch.zeros(1, 5, 64, 64, 3, dtype=torch.uint8)
    frames[..., 0] = 255  # pure red
    v2 = SyncNet(SyncNetConfig()).prepare_video(frames)
    assert v2.shape == (1, 3, 5, 224, 224)  # resized to 224
    assert torch.allclose(v2[0, :, 0, 100, 100], torch.tensor([0.0, 0.0, 255.0]), atol=1e-3)  # BGR, 0..255
    small = SyncNet(SyncNetConfig.preset("small")).prepare_video(frames)
    assert small.shape == (1, 1, 5, 64, 64)
    assert torch.allclose(small, torch.full_like(small, 0.299 * 255 / 127.5 - 1), atol=1e-5)  # grey in [-1, 1]


def test_c0_offset_is_the_int16_scale_of_syncnet_python():
    """syncnet_python computes MFCC on int16 samples; the store on [-1, 1]: only c0 differs, by 2 ln 32768."""
    rng = np.random.default_rng(0)
    wave = np.round(rng.normal(0, 3000, 16000)).clip(-32768, 32767)
    on_int16 = psf.mfcc(wave, 16000)
    on_unit = psf.mfcc(wave / 32768.0, 16000)
    np.testing.assert_allclose(on_int16[:, 0] - on_unit[:, 0], INT16_C0_OFFSET, atol=1e-6)
    np.testing.assert_allclose(on_int16[:, 1:], on_unit[:, 1:], atol=1e-6)
    x = torch.from_numpy(on_unit[:20].T.astype(np.float32))[None]  # (1, 13, 20)
    prepared = SyncNet(SyncNetConfig()).prepare_audio(x)
    assert prepared.shape == (1, 1, 13, 20)
    np.testing.assert_allclose(prepared[0, 0].numpy(), on_int16[:20].T, atol=1e-3)
    assert torch.equal(SyncNet(SyncNetConfig.preset("small")).prepare_audio(x)[:, 0], x)  # trained on store scale


@pytest.mark.parametrize("prefix", ["", "__S__.", "module.__S__."])
def test_official_weights_load_and_match_the_reference_forward(official, prefix, tmp_path):
    path, state = official
    if prefix:
        path = tmp_path / "prefixed.model"
        torch.save({prefix + k: v for k, v in state.items()}, path)  # zip serialisation this time
    model = load_syncnet_v2(path)
    assert not model.training and model.cfg == SyncNetConfig.preset("paper")
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())
    g = torch.Generator().manual_seed(1)
    lip = torch.rand(2, 3, 5, 224, 224, generator=g) * 255  # the official input: BGR 0..255
    aud = torch.randn(2, 1, 13, 20, generator=g) * 5

    def close(got, want):  # float32 sums over ~10^4 terms of 0..255 inputs: tolerance relative to the output scale
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))

    with torch.no_grad():
        close(model.forward_lip(lip), reference_lip(state, lip))
        close(model.forward_aud(aud), reference_aud(state, aud))
        # the store-format entry points feed the same tensors after converting RGB uint8 -> BGR and c0 -> int16 scale
        frames = torch.randint(0, 256, (2, 5, 224, 224, 3), dtype=torch.uint8, generator=g)
        bgr = frames.permute(0, 4, 1, 2, 3).flip(1).float()
        close(model.embed_video(frames), reference_lip(state, bgr))
        mfcc = aud[:, 0].clone()
        mfcc[:, 0] -= INT16_C0_OFFSET
        close(model.embed_audio(mfcc), reference_aud(state, aud))


def test_official_loader_refuses_other_files(official, tmp_path):
    _, state = official
    cases = {
        "missing": {k: v for k, v in state.items() if k != "netcnnlip.18.weight"},
        "shape": {**state, "netfcaud.3.weight": torch.zeros(256, 512)},
        "unknown": {**state, "netextra.0.weight": torch.zeros(1)},
    }
    for name, bad in cases.items():
        torch.save(bad, tmp_path / f"{name}.model")
        with pytest.raises(ValueError, match="not syncnet_v2 weights"):
            load_syncnet_v2(tmp_path / f"{name}.model")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled.model")  # a whole pickled module: refused by weights_only
    with pytest.raises(ValueError, match="weights-only"):
        load_syncnet_v2(tmp_path / "pickled.model")


def test_config_round_trip_and_validation():
    for name in ("paper", "small"):
        cfg = SyncNetConfig.preset(name)
        assert SyncNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(KeyError):
        SyncNetConfig.preset("huge")
    with pytest.raises(ValueError, match="multiple of 16"):
        SyncNetConfig.from_dict({**SyncNetConfig.preset("small").to_dict(), "image_size": 40})
    with pytest.raises(ValueError, match="color"):
        SyncNetConfig(color="cmyk")
    with pytest.raises(TypeError):
        SyncNetConfig.from_dict({"nope": 1})


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = SyncNet(SyncNetConfig.preset("small")).train()
    video, audio = model(torch.randint(0, 256, (4, 5, 64, 64, 3), dtype=torch.uint8), torch.randn(4, 13, 20))
    (video - audio).pow(2).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing
