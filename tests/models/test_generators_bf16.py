"""The four trained systems' generators as the GPU check runs them: their CPU audio features apart
(`audio_features`, what `__call__` reads them through), and a whole call under bfloat16 autocast giving uint8
frames. Freshly initialised "small" networks, synthetic speech (0.32 s: 8 video frames), CPU autocast standing in
for CUDA's."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.atvgnet import ATNetConfig
from models.atvgnet.at_net import ATNet
from models.atvgnet.generator import ATVGnetGenerator
from models.atvgnet.vg_net import VGNet, VGNetConfig
from models.lipgan.generator import GeneratorConfig, LipGANGenerator
from models.lipgan.inference import LipGANTalker
from models.sda.generator import SDAGenerator, SDAGeneratorConfig
from models.sda.inference import SDATalker
from models.zheng.a2l import A2L, A2LConfig
from models.zheng.generator import ZhengGenerator
from models.zheng.l2f import L2FConfig, UNetGenerator
from storage import audio as storage_audio
from storage.landmark_pca import fit_landmark_pca

RNG = np.random.default_rng(0)
SPEECH = (RNG.standard_normal(5120) * 3000).astype(np.int16)  # int16 (S,) at 16 kHz
N_FRAMES = math.ceil(len(SPEECH) / 640)
STILL_POINTS = (64 + 30 * RNG.uniform(-1, 1, (68, 2))).astype(np.float32)  # (68, 2) in 128-px crop pixels


def atvgnet() -> ATVGnetGenerator:
    shapes = STILL_POINTS + RNG.normal(0, 2, (20, 68, 2)).astype(np.float32)
    return ATVGnetGenerator(ATNet(ATNetConfig.preset("small")).eval(), fit_landmark_pca(shapes, 128),
                            VGNet(VGNetConfig.preset("small")).eval())


def lipgan() -> LipGANTalker:
    n_mels = GeneratorConfig.preset("small").n_mels
    stats = {"mean": np.full(n_mels, -40, np.float32), "std": np.full(n_mels, 20, np.float32)}
    return LipGANTalker(LipGANGenerator(GeneratorConfig.preset("small")).eval(), stats, T=8, batch=2)


def sda() -> SDATalker:
    return SDATalker(SDAGenerator(SDAGeneratorConfig.preset("small")).eval(), batch=4)


def zheng() -> ZhengGenerator:
    return ZhengGenerator(A2L(A2LConfig.preset("small")).eval(), UNetGenerator(L2FConfig.preset("small")).eval())


S = len(SPEECH)
# system: (generator factory, the audio features' documented shape)
SYSTEMS = {"atvgnet": (atvgnet, (storage_audio.n_mfcc_frames(S), 13)),
           "lipgan": (lipgan, (storage_audio.n_mel_frames(S), GeneratorConfig.preset("small").n_mels)),
           "sda": (sda, (S,)),  # the waveform at the model's 16 kHz
           "zheng": (zheng, (storage_audio.n_mfcc_frames(S), 13))}


@pytest.fixture(scope="module", params=list(SYSTEMS))
def system(request):
    torch.manual_seed(0)
    make, feature_shape = SYSTEMS[request.param]
    return request.param, make(), feature_shape


def test_audio_features_have_the_documented_shape_and_dtype(system):
    name, generator, shape = system
    features = generator.audio_features(SPEECH)
    assert features.dtype == np.float32 and features.shape == shape and np.isfinite(features).all()
    if name == "sda":
        np.testing.assert_array_equal(features, (SPEECH / 32767.0).astype(np.float32))


def test_a_call_under_bf16_autocast_gives_uint8_frames_and_reads_the_features_once(system, monkeypatch):
    name, generator, _ = system
    H, W = generator.crop.size
    still = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    extracted, dtypes = [], set()
    features = generator.audio_features

    def spy(audio, *args, **kwargs):
        extracted.append(len(audio))
        return features(audio, *args, **kwargs)

    def record(module, args, output):
        if isinstance(output, torch.Tensor):
            dtypes.add(output.dtype)

    monkeypatch.setattr(generator, "audio_features", spy)
    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            frames = generator(still, STILL_POINTS, SPEECH, N_FRAMES)
    finally:
        handle.remove()
    assert frames.dtype == np.uint8 and frames.shape == (N_FRAMES, H, W, 3)
    assert torch.bfloat16 in dtypes  # the networks did run under autocast
    assert extracted == [S]  # the features come from audio_features, once
