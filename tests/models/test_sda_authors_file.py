"""Reading the authors' Vougioukas et al. `.dat` files without running their pickles (issue 15): a file shaped as
theirs (legacy torch.save of the dict their `sda.VideoAnimator` reads, numpy mean face, numpy 1 module names)
loads; one that plants a global that would write a file is refused naming it, and the file is never written."""
import numpy as np
import pytest
import torch

from models.sda.authors_file import KEYS, read_dat
from tests.authors_trees import authors_tree, dat_dict, save_legacy


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
