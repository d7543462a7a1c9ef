"""Reading the authors' Vougioukas et al. `.dat` files without running their pickles (issue 15): a file shaped as
theirs (legacy torch.save of the dict their `sda.VideoAnimator` reads, numpy mean face, numpy 1 module names)
loads; one that plants a global that would write a file is refused naming it, and the file is never written."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

from models.sda.authors_file import KEYS, read_dat


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


def test_a_file_shaped_as_the_authors_loads_with_its_numpy_mean_face(tmp_path):
    path = tmp_path / "grid.dat"
    save_legacy(dat_dict(), path)
    state = read_dat(path)
    assert set(KEYS) <= set(state)
    assert isinstance(state["mean_face"], np.ndarray) and state["mean_face"].shape == (68, 2)
    assert state["mean_face"][67, 1] == 135 and state["img_size"] == (128, 96)
    assert state["encoder"]["encoder.cl.0.weight"].shape == (16, 1, 250)


class WritesAFile:
    """What a malicious pickle could do: unpickling calls open(path, "w"), which creates the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_planted_global_is_refused_by_name_and_never_runs(tmp_path):
    planted = tmp_path / "pwned.txt"
    path = tmp_path / "grid.dat"
    save_legacy(dat_dict({"mean_face": WritesAFile(planted)}), path, numpy1_names=False)
    assert not planted.exists()
    with pytest.raises(ValueError, match=r"refused, not loaded \(its pickle calls [\w.]*open"):
        read_dat(path)
    assert not planted.exists()


def test_an_lfs_pointer_a_missing_key_and_a_missing_file_say_what_they_are(tmp_path):
    pointer = tmp_path / "crema.dat"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:bd81\nsize 221171678\n")
    with pytest.raises(ValueError, match="Git LFS pointer"):
        read_dat(pointer)
    partial = tmp_path / "timit.dat"
    save_legacy({k: v for k, v in dat_dict().items() if k != "mean_face"}, partial, numpy1_names=False)
    with pytest.raises(ValueError, match="no mean_face"):
        read_dat(partial)
    with pytest.raises(FileNotFoundError):
        read_dat(tmp_path / "absent.dat")


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


def test_the_authors_grid_networks_map_onto_the_generator_key_for_key_and_render(tmp_path):
    from models.sda.authors_file import generator_config, generator_state
    from models.sda.generator import SDAGenerator, audio_windows

    tree = authors_tree()
    assert tree["generator"]["dcl.0.0.weight"].shape == (394, 1024, 4, 3)  # issue #70's shape of their checkpoint
    path = tmp_path / "grid.dat"
    save_legacy({**dat_dict(), **tree}, path)
    state = read_dat(path)
    cfg = generator_config(state)
    assert (cfg.audio_rate, cfg.content_layers, cfg.noise, cfg.image_size, cfg.ngf) == (50000, 2, "gru", (128, 96), 64)
    model = SDAGenerator(cfg)
    model.load_state_dict(generator_state(state, model))
    assert torch.equal(model.blocks[3].up[0].weight,
                       tree["generator"]["dcl.4.dcl2.weight"])
    assert torch.equal(model.audio_encoder.layers[0][0].weight, tree["encoder"]["encoder.cl.0.weight"])
    assert torch.equal(model.identity_encoder.code[0].weight, tree["encoder_id"]["cl.5.0.weight"])
    sound = torch.from_numpy(audio_windows(np.zeros(16000, np.int16), 3, cfg.audio_rate))[None]  # (1, 3, 10000)
    with torch.no_grad():
        frames = model.eval()(torch.zeros(1, 3, 128, 96), sound, noise=torch.zeros(1, 3, 10))
    assert frames.shape == (1, 3, 3, 128, 96) and torch.isfinite(frames).all()
    bad = {**state, "generator": {**state["generator"], "dcl.5.weight": torch.zeros(64, 3, 5, 5)}}
    with pytest.raises(ValueError, match=r"generator\.dcl\.5\.weight has shape \(64, 3, 5, 5\)"):
        generator_state(bad, model)
    extra = {**state, "encoder_id": {**state["encoder_id"], "fc.weight": torch.zeros(1)}}
    with pytest.raises(ValueError, match=r"fc\.weight is not in the authors' module tree"):
        generator_state(extra, model)
