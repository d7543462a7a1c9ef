"""The authors' released module trees, rebuilt as bare modules with their key names and shapes (no forward), and
files shaped as their releases, written from them with random weights: what the tests of the importers
(`models.atvgnet.authors_keys`, `models.sda.authors_file`) and of `talkface import-weights` read.

ATVGnet: lelechen63/ATVGnet `code/models.py` (`AT_net` lines 18-67, `VG_net` lines 182-300; `ops.conv2d` =
Sequential(Conv2d, BatchNorm2d, ReLU)). Vougioukas et al.: DinoMan/speech-driven-animation `sda/` (`rnn_audio.RNN`,
`encoder_audio`, `encoder_image`, `img_generator`) and the dict `sda.VideoAnimator` reads from a `.dat`.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn


def conv2d(c_in, c_out, k=3, s=1, p=1, norm=True):  # the authors' ops.conv2d
    layers = [nn.Conv2d(c_in, c_out, k, s, p, bias=not norm)] + ([nn.BatchNorm2d(c_out)] if norm else [])
    return nn.Sequential(*layers, nn.ReLU())


class AuthorsATNet(nn.Module):  # code/models.py lines 18-47
    def __init__(self):
        super().__init__()
        self.lmark_encoder = nn.Sequential(nn.Linear(6, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU())
        self.audio_eocder = nn.Sequential(conv2d(1, 64), conv2d(64, 128), nn.MaxPool2d(3, (1, 2)), conv2d(128, 256),
                                          conv2d(256, 256), conv2d(256, 512), nn.MaxPool2d(3, (2, 2)))
        self.audio_eocder_fc = nn.Sequential(nn.Linear(1024 * 12, 2048), nn.ReLU(), nn.Linear(2048, 256), nn.ReLU())
        self.lstm = nn.LSTM(256 * 3, 256, 3, batch_first=True)
        self.lstm_fc = nn.Sequential(nn.Linear(256, 6))


class ResnetBlock(nn.Module):  # code/models.py lines 303-342, zero padding, dropout, no bias
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(),
                                        nn.Dropout(0.5), nn.Conv2d(dim, dim, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(dim))


class AuthorsVGNet(nn.Module):  # code/models.py lines 182-256
    def __init__(self):
        super().__init__()
        up = lambda i, o, bias: nn.ConvTranspose2d(i, o, 3, 2, 1, output_padding=1, bias=bias)  # noqa: E731
        self.image_encoder1 = nn.Sequential(nn.ReflectionPad2d(3), conv2d(3, 64, 7, 1, 0), conv2d(64, 64, 3, 2, 1),
                                            conv2d(64, 128, 3, 2, 1))
        self.image_encoder2 = nn.Sequential(conv2d(128, 256, 3, 2, 1), conv2d(256, 512, 3, 2, 1))
        self.landmark_encoder = nn.Sequential(nn.Linear(136, 64), nn.ReLU())
        self.landmark_encoder_stage2 = nn.Sequential(conv2d(1, 256, 3))
        self.lmark_att = nn.Sequential(up(512, 256, True), nn.BatchNorm2d(256), nn.ReLU(), up(256, 128, True),
                                       nn.BatchNorm2d(128), nn.ReLU(), conv2d(128, 1, 3, norm=False))
        self.lmark_feature = nn.Sequential(conv2d(256, 512, 3))
        self.generator1 = nn.Sequential(*[ResnetBlock(512) for _ in range(9)], up(512, 256, False),
                                        nn.BatchNorm2d(256), nn.ReLU(), up(256, 128, False), nn.BatchNorm2d(128),
                                        nn.ReLU())
        self.base = nn.Sequential(up(128, 64, False), nn.BatchNorm2d(64), nn.ReLU(), up(64, 32, False),
                                  nn.BatchNorm2d(32), nn.ReLU())
        self.generator_color = nn.Sequential(nn.Conv2d(32, 3, 7, padding=3), nn.Tanh())
        self.generator_attention = nn.Sequential(nn.Conv2d(32, 1, 7, padding=3), nn.Sigmoid())
        self.bottle_neck = nn.Sequential(conv2d(1024, 128, 3, 1, 1))
        self.convGRU = nn.Module()  # convolutional_rnn.Conv2dGRU(128, 512, 3, dilation=2): gates stacked (r, z, n)
        for name, shape in (("weight_ih_l0", (1536, 128, 3, 3)), ("weight_hh_l0", (1536, 512, 3, 3)),
                            ("bias_ih_l0", (1536,)), ("bias_hh_l0", (1536,))):
            self.convGRU.register_parameter(name, nn.Parameter(torch.empty(shape)))


def randomised(module: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = module.state_dict()
    return {k: (torch.rand(v.shape, generator=g) * 0.2 + 0.01 if v.is_floating_point() else v)
            for k, v in state.items()}


def dat_dict(extra=None) -> dict:
    g = torch.Generator().manual_seed(0)
    state = {"encoder": OrderedDict([("encoder.cl.0.weight", torch.rand(16, 1, 250, generator=g)),
                                     ("encoder.activations.0.0.num_batches_tracked", torch.tensor(7))]),
             "encoder_id": OrderedDict([("cl.5.0.weight", torch.rand(128, 1024, 4, 3, generator=g))]),
             "generator": OrderedDict([("dcl.5.weight", torch.rand(64, 3, 4, 4, generator=g))]),
             "mean_face": np.arange(136, dtype=np.float64).reshape(68, 2), "img_size": (128, 96),
             "audio_rate": 50000, "video_rate": 25, "audio_feat_len": 0.2, "audio_feat_samples": 10000,
             "id_enc_dim": 128, "rnn_gen_dim": 256, "aud_enc_dim": 256, "aux_latent": 10, "sequential_noise": True}
    return {**state, **(extra or {})}


def save_legacy(obj, path, numpy1_names=True):
    """torch.save in the pre-zip format the 2019 files use; numpy 1 wrote its arrays as numpy.core.multiarray."""
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    if numpy1_names:
        raw = path.read_bytes()
        assert b"numpy._core.multiarray" in raw
        path.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))


def authors_tree(rate: int = 50000) -> dict:
    """The authors' three state dicts for their GRID settings, from their module tree (sda/rnn_audio.py `RNN`,
    sda/encoder_audio.py, sda/encoder_image.py, sda/img_generator.py; random weights), as their `.dat` holds them."""
    from torch import nn

    bn = lambda c, d=1: nn.Sequential(nn.BatchNorm1d(c) if d == 1 else nn.BatchNorm2d(c), nn.ReLU())  # noqa: E731
    audio = nn.Module()
    audio.encoder = nn.Module()
    audio.encoder.cl = nn.ModuleList([nn.Conv1d(1, 16, rate // 200, rate // 1000, rate // 500)] +
                                     [nn.Conv1d(16 * 2**i, 32 * 2**i, 4, 2, 1) for i in range(3)] +
                                     [nn.Conv1d(128, 256, 10, 5, 3), nn.Conv1d(256, 256, 5)])
    audio.encoder.activations = nn.ModuleList([bn(16 * 2**i) for i in range(5)] + [nn.Tanh()])
    audio.rnn = nn.GRU(256, 256, 2, batch_first=True)
    identity = nn.Module()
    widths = [3, 64, 128, 256, 512, 1024]
    identity.cl = nn.ModuleList([nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1, bias=False),
                                               nn.BatchNorm2d(widths[i + 1]), nn.ReLU()) for i in range(5)] +
                                [nn.Sequential(nn.Conv2d(1024, 128, (4, 3), bias=False), nn.Tanh())])
    generator = nn.Module()
    generator.rnn_noise = nn.GRU(10, 10, batch_first=True)

    class UnetBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.dcl1 = nn.ConvTranspose2d(2 * c, c, 3, padding=1, bias=False)
            self.dcl2 = nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False)
            self.activation1, self.activation2 = bn(c, 2), bn(c // 2, 2)

    generator.dcl = nn.ModuleList([nn.Sequential(nn.ConvTranspose2d(394, 1024, (4, 3), bias=False),
                                                 nn.BatchNorm2d(1024), nn.ReLU())] +
                                  [UnetBlock(1024 // 2**i) for i in range(4)] +
                                  [nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False)])
    g = torch.Generator().manual_seed(3)
    rand = lambda sd: OrderedDict((k, torch.rand(v.shape, generator=g) * 0.1 if v.is_floating_point() else v)  # noqa
                                  for k, v in sd.items())
    return {"encoder": rand(audio.state_dict()), "encoder_id": rand(identity.state_dict()),
            "generator": rand(generator.state_dict())}


def write_atvgnet_release(folder: Path, prefix: str = "module.") -> tuple[Path, Path]:
    """(atnet_lstm_18.pth, generator_23.pth) in `folder`: random state dicts of their trees, saved as their training
    saved them (DataParallel's `module.` prefix; VG-net without `num_batches_tracked`, as torch 0.4.0 wrote)."""
    folder.mkdir(parents=True, exist_ok=True)
    atnet, vgnet = folder / "atnet_lstm_18.pth", folder / "generator_23.pth"
    torch.save(OrderedDict((prefix + k, v) for k, v in randomised(AuthorsATNet(), 0).items()), atnet)
    torch.save(OrderedDict((prefix + k, v) for k, v in randomised(AuthorsVGNet(), 1).items()
                           if not k.endswith("num_batches_tracked")), vgnet)
    return atnet, vgnet


def write_sda_release(path: Path, mean_face: np.ndarray, rate: int = 50000) -> Path:
    """A `.dat` as the authors' (legacy torch.save, numpy 1 names) holding random GRID networks and `mean_face`."""
    save_legacy({**dat_dict({"mean_face": np.asarray(mean_face, np.float64), "audio_rate": rate}),
                 **authors_tree(rate)}, path)
    return path


def sda_mean_face(scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A (68, 2) mean face in pixels of the authors' 128x96 crop (points 33, 36, 39, 42, 45 filled, the rest 0):
    talkface's face_sda template points (`tasks.align.sda_template`), scaled about the crop's centre and shifted."""
    from tasks import align

    face = np.zeros((68, 2))
    centre = np.array([48.0, 64.0])
    face[list(align.SDA_POINTS)] = (align.sda_template((128, 96)) - centre) * scale + centre + shift
    return face
