"""The authors' released ATVGnet state dicts onto talkface's AT-net and VG-net (issue 15): state dicts written here
with the authors' key names and shapes, from their module tree (lelechen63/ATVGnet code/models.py `AT_net`,
`VG_net`; `ops.conv2d` = Sequential(Conv2d, BatchNorm2d, ReLU)), rebuilt below as bare module trees (no forward):
they load key for key, with and without DataParallel's `module.` prefix, and a wrong key or shape is refused by name.
"""
import pytest
import torch

from models.atvgnet import ATNet, VGNet
from models.atvgnet.authors_keys import AuthorsKeyError, atnet_state, vgnet_state
from tests.authors_trees import AuthorsATNet, AuthorsVGNet, randomised


@pytest.fixture(scope="module")
def authors_vgnet() -> dict[str, torch.Tensor]:
    return randomised(AuthorsVGNet(), 1)


def test_authors_trees_have_the_released_parameter_counts(authors_vgnet):
    # the counts the issue measured with the authors' own classes: 30,071,750 (AT-net); VG-net 58,355,781
    assert sum(p.numel() for p in AuthorsATNet().parameters()) == 30_071_750
    assert sum(v.numel() for k, v in authors_vgnet.items() if "running" not in k and "num_batches" not in k) \
        == 58_355_781


@pytest.mark.parametrize("prefix", ["", "module."])
def test_atnet_loads_key_for_key_and_computes_with_the_authors_weights(prefix):
    authors = randomised(AuthorsATNet(), 0)
    model = ATNet()
    model.load_state_dict(atnet_state({prefix + k: v for k, v in authors.items()}, model))
    assert torch.equal(model.audio_encoder.conv[5][0].weight, authors["audio_eocder.5.0.weight"])
    assert torch.equal(model.audio_encoder.conv[3][1].running_var, authors["audio_eocder.3.1.running_var"])
    assert torch.equal(model.decoder.bias, authors["lstm_fc.0.bias"])
    assert torch.equal(model.lstm.weight_hh_l2, authors["lstm.weight_hh_l2"])


@pytest.mark.parametrize("prefix", ["", "module."])
def test_vgnet_loads_key_for_key_with_the_two_heads_merged(authors_vgnet, prefix):
    model = VGNet()
    state = {prefix + k: v for k, v in authors_vgnet.items() if not k.endswith("num_batches_tracked")}  # torch 0.4.0
    model.load_state_dict(vgnet_state(state, model))
    assert torch.equal(model.head.weight[:3], authors_vgnet["generator_color.0.weight"])
    assert torch.equal(model.head.bias[3:], authors_vgnet["generator_attention.0.bias"])
    assert torch.equal(model.temporal.conv_h.bias, authors_vgnet["convGRU.bias_hh_l0"])
    assert torch.equal(model.landmark_attention[0][0].bias, authors_vgnet["lmark_att.0.bias"])
    assert torch.equal(model.decoder1[8].block[4].weight, authors_vgnet["generator1.8.conv_block.4.weight"])
    assert torch.equal(model.decoder2[1][1].running_mean, authors_vgnet["base.4.running_mean"])
    assert torch.equal(model.image_encoder1[5][0].weight, authors_vgnet["image_encoder1.3.0.weight"])


def test_vgnet_renders_frames_from_the_mapped_weights(authors_vgnet):
    torch.manual_seed(0)
    model = VGNet()
    model.load_state_dict(vgnet_state(authors_vgnet, model))
    face = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        frames, attention = model.eval()(face, torch.rand(1, 2, 136) - 0.5, torch.rand(1, 136) - 0.5)
    assert frames.shape == (1, 2, 3, 128, 128) and torch.isfinite(frames).all()
    assert 0 <= attention.min() and attention.max() <= 1


def test_a_wrong_shape_an_unknown_or_a_missing_key_is_refused_by_name(authors_vgnet):
    model = VGNet()
    bad = dict(authors_vgnet)
    bad["convGRU.weight_hh_l0"] = torch.zeros(1536, 512, 5, 5)
    with pytest.raises(AuthorsKeyError, match=r"convGRU\.weight_hh_l0 has shape \(1536, 512, 5, 5\)"):
        vgnet_state(bad, model)
    extra = {**authors_vgnet, "decoder.0.weight": torch.zeros(1)}
    with pytest.raises(AuthorsKeyError, match=r"decoder\.0\.weight"):
        vgnet_state(extra, model)
    missing = {k: v for k, v in authors_vgnet.items() if k != "lmark_att.3.bias"}
    with pytest.raises(AuthorsKeyError, match=r"lacks 1 tensor.*landmark_attention\.1\.0\.bias"):
        vgnet_state(missing, model)
    mixed = {("module." + k if i % 2 else k): v for i, (k, v) in enumerate(authors_vgnet.items())}
    with pytest.raises(AuthorsKeyError, match="some keys start with 'module.'"):
        vgnet_state(mixed, model)
    with pytest.raises(AuthorsKeyError, match="AT-net"):  # VG-net's weights given as AT-net's
        atnet_state(authors_vgnet, ATNet())
