"""Chen et al. 2018 lip GAN networks (shared/specs/chen2018-lipgan.md sections 2-5): shapes against the spec's tables,
parameter counts, gradient paths, the correlation loss, the motion inputs. Paper presets run at batch 1 under
no_grad; everything else at the small presets."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from models.lipgan import (AudioDerivativeEncoder, CorrelationConfig, DiscriminatorConfig, FlowNetConfig,
                           GeneratorConfig, LipGANGenerator, MotionEncoder, MouthAutoencoder, MouthFlowNet,
                           PerceptualConfig, ThreeStreamDiscriminator, TwoStreamDiscriminator, correlation_loss,
                           farneback_flow, frame_differences)
from models.lipgan.discriminator import spread_strides
from models.lipgan.generator import audio_strides
from tasks.media import decode

CONFIGS = (GeneratorConfig, DiscriminatorConfig, CorrelationConfig, PerceptualConfig, FlowNetConfig)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def clip_inputs(B: int, T: int, S: int, n_mels: int, seed: int = 0):
    """identity (B, 3, S, S), video (B, 3, T, S, S) in [-1, 1], audio (B, 1, 4T, n_mels)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(B, 3, S, S, generator=g) * 2 - 1, torch.rand(B, 3, T, S, S, generator=g) * 2 - 1,
            torch.randn(B, 1, 4 * T, n_mels, generator=g))


@pytest.mark.parametrize("cls", CONFIGS)
def test_presets(cls):
    assert cls.preset("paper") == cls()
    small = cls.preset("small")
    assert cls.from_dict(small.to_dict()) == small
    with pytest.raises(KeyError):
        cls.preset("huge")


def test_generator_paper_sizes():
    cfg = GeneratorConfig.preset("paper")
    # the spec's audio table: 1->32 s1; 32->64 s2; 64->128 s1; 128->256 s2; 256->256 s(1, 2)
    assert audio_strides(cfg.n_mels, cfg.feature_size) == ((1, 1), (2, 2), (1, 1), (2, 2), (1, 2))
    model = LipGANGenerator(cfg).eval()
    assert abs(n_params(model) - 16.6e6) < 0.05 * 16.6e6  # 16,695,267
    identity, _, audio = clip_inputs(1, 16, 64, 128)
    with torch.no_grad():
        video, f_s = model(identity, audio)  # audio (1, 1, 64, 128)
    assert video.shape == (1, 3, 16, 64, 64) and video.dtype == torch.float32
    assert f_s.shape == (1, 256, 16, 16)  # time 64 -> 16, mel 128 -> 16
    assert video.abs().max() <= 1


def test_generator_small_and_free_t():
    cfg = GeneratorConfig.preset("small")
    model = LipGANGenerator(cfg)
    identity, _, audio = clip_inputs(2, 8, 32, 32)
    video, f_s = model(identity, audio)
    assert video.shape == (2, 3, 8, 32, 32) and f_s.shape == (2, 64, 8, 8)
    video.mean().backward()
    assert model.audio_encoder[0][0].weight.grad.abs().sum() > 0
    assert model.identity_encoder[1].weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert model.eval()(identity[:1], audio[:1, :, :12])[0].shape == (1, 3, 3, 32, 32)  # T = 3
    with pytest.raises(ValueError, match="audio must be"):
        model(identity, audio[:, :, :10])  # rows not a multiple of 4
    with pytest.raises(ValueError, match="identity must be"):
        model(identity[:, :, :16], audio)


def test_audio_strides_follow_the_config():
    for n_mels, feature_size in ((128, 16), (32, 8), (64, 16), (48, 12), (256, 8), (16, 16)):
        x = torch.zeros(1, 1, 4 * 5, n_mels)
        for s_t, s_f in audio_strides(n_mels, feature_size):
            x = torch.nn.functional.conv2d(x, torch.zeros(1, 1, 3, 3), stride=(s_t, s_f), padding=1)
        assert x.shape[2:] == (5, feature_size)
    for n_mels, image_size in ((100, 64), (16, 128), (16 * 64, 64)):  # not F x 2^k; fewer mels than F; 2^6
        with pytest.raises(ValueError, match="n_mels"):
            GeneratorConfig(image_size=image_size, n_mels=n_mels)
    with pytest.raises(ValueError, match="multiple of 4"):
        GeneratorConfig(image_size=30)


def test_discriminators_paper_shapes():
    cfg = DiscriminatorConfig.preset("paper")
    assert cfg.video_out == (1, 4)  # every stream (256, 1, 4, 4)
    assert cfg.motion_strides == ((2, 2, 2), (2, 1, 1), (2, 2, 2), (2, 1, 1))  # the spec's motion strides
    _, video, audio = clip_inputs(1, 16, 64, 128)
    flow = torch.randn(1, 2, 15, 16, 16)
    three, two = ThreeStreamDiscriminator(cfg).eval(), TwoStreamDiscriminator(cfg).eval()
    assert three.audio_fc[0].in_features == 131072 and three.audio_fc[0].bias is None
    assert two.audio_fc[0].bias is not None and len(two.audio_fc) == 2  # Linear + ReLU, no BN
    assert three.joint[1].kernel_size == two.joint[1].kernel_size == (1, 4, 4)
    assert three.joint[0][0].in_channels == 768 and two.joint[0][0].in_channels == 512 + 256
    assert 50e6 < n_params(three) < 60e6 and 50e6 < n_params(two) < 60e6  # the spec's "~55 M"
    with torch.no_grad():
        streams = three.video(video), three.motion(flow), three.audio(audio)
        assert [s.shape for s in streams] == [(1, 256, 1, 4, 4), (1, 256, 1, 4, 4), (1, 256, 16, 32)]
        assert two.video(video).shape == (1, 512, 1, 4, 4)
        assert three(video, flow, audio).shape == (1,) and two(video, audio).shape == (1,)


def test_discriminator_gradients_reach_every_stream():
    cfg = DiscriminatorConfig.preset("small")
    _, video, audio = clip_inputs(2, 8, 32, 32)
    flow = torch.randn(2, 2, 7, 8, 8)
    for model, inputs in ((ThreeStreamDiscriminator(cfg), (video, flow, audio)),
                          (TwoStreamDiscriminator(cfg), (video, audio))):
        inputs = [x.clone().requires_grad_(True) for x in inputs]
        logits = model(*inputs)
        assert logits.shape == (2,) and logits.dtype == torch.float32
        torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(2)).backward()
        for x in inputs:
            assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_discriminator_frame_difference_motion_and_validation():
    cfg = DiscriminatorConfig.preset("small")
    fd = DiscriminatorConfig.from_dict({**cfg.to_dict(), "motion_channels": 3, "motion_size": 32})
    assert fd.motion_strides == ((2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2))  # time 7 -> 1, space 32 -> 2
    _, video, audio = clip_inputs(2, 8, 32, 32)
    with torch.no_grad():
        assert ThreeStreamDiscriminator(fd).eval()(video, frame_differences(video), audio).shape == (2,)
        with pytest.raises(ValueError, match="motion must be"):
            ThreeStreamDiscriminator(cfg).eval()(video, frame_differences(video), audio)
        with pytest.raises(ValueError, match="audio must be"):
            TwoStreamDiscriminator(cfg).eval()(video, audio[:, :, :16])
    assert DiscriminatorConfig(motion_channels=3, motion_size=64).motion_strides == ((2, 2, 2),) * 4
    with pytest.raises(ValueError, match="leave no frame"):
        DiscriminatorConfig(frames=8)  # the paper's temporal strides need T >= 16
    with pytest.raises(ValueError, match="motion stream cannot"):
        DiscriminatorConfig(motion_size=12)
    with pytest.raises(ValueError, match="multiple of 16"):
        DiscriminatorConfig(image_size=40)
    assert spread_strides(2) == (2, 1, 2, 1) and spread_strides(0) == (1, 1, 1, 1)


def test_correlation_encoders_and_options():
    with torch.no_grad():
        cfg = CorrelationConfig.preset("paper")
        phi_s, phi_v = AudioDerivativeEncoder(cfg).eval(), MotionEncoder(cfg).eval()
        assert phi_s(torch.randn(1, 256, 16, 16)).shape == (1, 15)
        assert phi_v(torch.randn(1, 2, 15, 16, 16)).shape == (1, 15)
        small = CorrelationConfig.preset("small")
        f_s = torch.randn(2, 64, 8, 8)
        deriv = AudioDerivativeEncoder(small).eval()
        a = deriv(f_s)
        assert a.shape == (2, 7) and MotionEncoder(small).eval()(torch.randn(2, 2, 7, 8, 8)).shape == (2, 7)
        # the derivative ignores what is constant in time; the non-derivative reading ignores the last step
        assert torch.allclose(deriv(f_s + torch.randn(2, 64, 1, 8)), a, atol=1e-5)
        plain = AudioDerivativeEncoder(CorrelationConfig.from_dict({**small.to_dict(), "non_derivative": True})).eval()
        plain.load_state_dict(deriv.state_dict())
        changed_last = f_s.clone()
        changed_last[:, :, -1] += 1
        assert plain(f_s).shape == (2, 7) and torch.allclose(plain(changed_last), plain(f_s))
        assert not torch.allclose(plain(f_s + torch.randn(2, 64, 1, 8)), plain(f_s))
        # frame differences (3, 15, 64, 64) need the 6-layer φ_v
        fd = CorrelationConfig(motion_channels=3, motion_size=64, motion_widths=(4, 8, 16, 16, 16, 16))
        assert MotionEncoder(fd).eval()(torch.randn(1, 3, 15, 64, 64)).shape == (1, 15)
    with pytest.raises(ValueError, match="at least 6"):
        CorrelationConfig(motion_channels=3, motion_size=64)
    with pytest.raises(ValueError, match="at least 5"):
        CorrelationConfig(audio_freq=32)


def test_correlation_loss():
    a = torch.randn(3, 15)
    assert correlation_loss(a, a).abs() < 1e-6 and correlation_loss(a, 2.5 * a).abs() < 1e-6
    assert torch.isclose(correlation_loss(a, -a), torch.tensor(2.0))
    e = torch.eye(2)
    assert torch.isclose(correlation_loss(e, e.flip(0)), torch.tensor(1.0))  # orthogonal
    assert torch.isclose(correlation_loss(torch.stack([a[0], a[0]]), torch.stack([a[0], -a[0]])), torch.tensor(1.0))
    assert torch.isclose(correlation_loss(a, -a), torch.nn.CosineEmbeddingLoss()(a, -a, torch.ones(3)))


def test_perceptual_autoencoder():
    with torch.no_grad():
        model = MouthAutoencoder(PerceptualConfig.preset("paper")).eval()
        x = torch.rand(1, 3, 64, 64) * 2 - 1
        assert model.encode(x).shape == (1, 256, 16, 16)
        y = model(x)
        assert y.shape == (1, 3, 64, 64) and y.abs().max() <= 1
    small = MouthAutoencoder(PerceptualConfig.preset("small"))
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    assert small.encode(x).shape == (4, 64, 8, 8)
    torch.nn.functional.mse_loss(small(x), x).backward()
    assert small.encoder[1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="x must be"):
        small.encode(torch.rand(4, 3, 64, 64))


def test_flow_net_shapes():
    with torch.no_grad():
        assert MouthFlowNet().eval()(torch.rand(1, 3, 16, 64, 64) * 2 - 1).shape == (1, 2, 15, 16, 16)
    net = MouthFlowNet(FlowNetConfig.preset("small"))
    clip = (torch.rand(2, 3, 8, 32, 32) * 2 - 1).requires_grad_(True)
    flow = net(clip)
    assert flow.shape == (2, 2, 7, 8, 8)
    flow.square().mean().backward()  # differentiable: the generator gets gradients through F
    assert clip.grad.abs().sum() > 0
    with torch.no_grad():  # pair t of sample b is (frame t, frame t+1) of that sample
        swapped = clip.detach().clone()
        swapped[1, :, 4:] = torch.rand(3, 4, 32, 32)
        assert torch.allclose(net(swapped)[:, :, :3], flow[:, :, :3].detach(), atol=1e-6)
        assert not torch.allclose(net(swapped)[1, :, 3:], flow[1, :, 3:].detach())
    with pytest.raises(ValueError, match="clip must be"):
        net(clip[:, :, :1])


def test_farneback_flow_on_a_translated_texture():
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (64, 128)).astype(np.float32), (0, 0), 2)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    # content moves right by 2 px per frame: +0.5 px per frame on the quarter-resolution grid
    frames = np.stack([np.repeat(texture[:, 40 - 2 * t:104 - 2 * t, None], 3, axis=2) for t in range(6)])
    flow = farneback_flow(frames)
    assert flow.shape == (5, 2, 16, 16) and flow.dtype == np.float32
    assert abs(flow[:, 0].mean() - 0.5) < 0.05 and abs(flow[:, 1].mean()) < 0.05
    with pytest.raises(ValueError, match="uint8"):
        farneback_flow(frames.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        farneback_flow(frames[:, :62])


def test_farneback_flow_on_real_frames(sample_clip):
    frames = decode(sample_clip).frames  # uint8 (75, 288, 360, 3), GRID s1
    mouth = np.ascontiguousarray(frames[20:36, 170:234, 148:212])  # a 64 x 64 region around the mouth
    flow = farneback_flow(mouth)
    assert flow.shape == (15, 2, 16, 16) and flow.dtype == np.float32 and np.isfinite(flow).all()
    with torch.no_grad():  # the target's layout is what φ_v takes: (B, 2, T-1, 16, 16)
        b = MotionEncoder().eval()(torch.from_numpy(flow).transpose(0, 1).unsqueeze(0))
    assert b.shape == (1, 15) and torch.isfinite(b).all()


def test_frame_differences():
    video = torch.arange(2 * 3 * 4 * 2 * 2, dtype=torch.float32).view(2, 3, 4, 2, 2) ** 2
    diff = frame_differences(video)
    assert diff.shape == (2, 3, 3, 2, 2)
    assert torch.equal(diff[:, :, 1], video[:, :, 2] - video[:, :, 1])
    with pytest.raises(ValueError):
        frame_differences(video[:, :, :1])


def test_networks_fit_a_non_default_config():
    """Image 48, T 12, 48 mels (f_s frequency 12): every size follows from the configs, one full G + D + φ step."""
    S, T, n_mels = 48, 12, 48
    gen = LipGANGenerator(GeneratorConfig(image_size=S, n_mels=n_mels, ngf=8, audio_channels=(4, 8, 8, 16, 16),
                                          n_res_blocks=1))
    dcfg = DiscriminatorConfig(image_size=S, frames=T, n_mels=n_mels, audio_channels=(4, 8, 8, 16), audio_features=16,
                               video_channels=(8, 16, 16, 16), video_time_strides=(2, 2, 1, 1),
                               two_stream_video_out=32, motion_size=S // 4, motion_widths=(8, 16, 16, 16),
                               joint_channels=32)
    assert dcfg.video_out == (1, 3)
    ccfg = CorrelationConfig(audio_channels=16, audio_freq=S // 4, audio_widths=(8, 8, 8, 8), motion_size=S // 4)
    flow_net = MouthFlowNet(FlowNetConfig(image_size=S, channels=(8, 8), dilations=(1, 2)))
    identity, _, audio = clip_inputs(2, T, S, n_mels)
    video, f_s = gen(identity, audio)
    assert video.shape == (2, 3, T, S, S) and f_s.shape == (2, 16, T, S // 4)
    flow = flow_net(video)
    assert flow.shape == (2, 2, T - 1, S // 4, S // 4)
    logits = ThreeStreamDiscriminator(dcfg)(video, flow, audio) + TwoStreamDiscriminator(dcfg)(video, audio)
    a, b = AudioDerivativeEncoder(ccfg)(f_s), MotionEncoder(ccfg)(flow)
    assert logits.shape == (2,) and a.shape == b.shape == (2, T - 1)
    phi = MouthAutoencoder(PerceptualConfig(image_size=S, ngf=8, n_res_blocks=1)).encode(video[:, :, 0])
    assert phi.shape == (2, 32, S // 4, S // 4)
    (logits.mean() + correlation_loss(a, b) + phi.square().mean()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gen.parameters())
