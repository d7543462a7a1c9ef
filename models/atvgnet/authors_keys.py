"""The authors' released ATVGnet state dicts (`atnet_lstm_18.pth`: AT-net, `generator_23.pth`: VG-net trained on LRW;
linked from the lelechen63/ATVGnet README) mapped onto talkface's `ATNet` and `VGNet`, key for key with a strict
key and shape check.

Their key names come from their module tree (lelechen63/ATVGnet `code/models.py`, classes `AT_net` lines 18-67 and
`VG_net` lines 182-300, and `ops.conv2d` = Sequential(Conv2d, BatchNorm2d, ReLU)); the files were saved from
`nn.DataParallel`, so each key may start with `module.` (their `demo.py` strips it, `multi2single`). BatchNorm's
`num_batches_tracked` may be missing (torch 0.4.0 did not write it); it is not used in eval mode and is then set to
0. Two of their tensors become one of ours: VG-net's colour head (3 channels, tanh) and attention head (1 channel,
sigmoid) are the four output channels of `VGNet.head`. Pure torch.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from models.atvgnet.at_net import ATNet, ATNetConfig
from models.atvgnet.vg_net import VGNet, VGNetConfig
from models.weights import AuthorsKeyError, Released, load_file, matched_state

PREFIX = "module."

# (authors' key pattern, talkface key); \1 ... are the pattern's groups; _P: a conv's or BatchNorm's tensor names.
_P = r"(weight|bias|running_mean|running_var|num_batches_tracked)"

ATNET_RULES: tuple[tuple[str, str], ...] = (
    (rf"lmark_encoder\.([02])\.{_P}", r"landmark_encoder.\1.\2"),
    (rf"audio_eocder\.([01345])\.([01])\.{_P}", r"audio_encoder.conv.\1.\2.\3"),
    (rf"audio_eocder_fc\.([02])\.{_P}", r"audio_encoder.fc.\1.\2"),
    (r"lstm\.((weight|bias)_(ih|hh)_l\d)", r"lstm.\1"),
    (rf"lstm_fc\.0\.{_P}", r"decoder.\1"),
)

VGNET_RULES: tuple[tuple[str, str], ...] = (
    # image_encoder1: ReflectionPad2d(3), conv2d(3, 64, 7), conv2d(64, 64, s2), conv2d(64, 128, s2); ours flattens the
    # first conv2d into indices 1 (conv), 2 (BN), 3 (ReLU), so theirs 2, 3 are our 4, 5
    (rf"image_encoder1\.1\.0\.{_P}", r"image_encoder1.1.\1"),
    (rf"image_encoder1\.1\.1\.{_P}", r"image_encoder1.2.\1"),
    (rf"image_encoder1\.2\.([01])\.{_P}", r"image_encoder1.4.\1.\2"),
    (rf"image_encoder1\.3\.([01])\.{_P}", r"image_encoder1.5.\1.\2"),
    (rf"image_encoder2\.([01])\.([01])\.{_P}", r"image_encoder2.\1.\2.\3"),
    (rf"landmark_encoder\.0\.{_P}", r"landmark_fc.0.\1"),
    (rf"landmark_encoder_stage2\.0\.([01])\.{_P}", r"landmark_conv1.\1.\2"),
    (rf"lmark_feature\.0\.([01])\.{_P}", r"landmark_conv2.\1.\2"),
    # lmark_att: ConvT(512, 256), BN, ReLU, ConvT(256, 128), BN, ReLU, conv2d(128, 1, sigmoid, no BN)
    (rf"lmark_att\.0\.{_P}", r"landmark_attention.0.0.\1"),
    (rf"lmark_att\.1\.{_P}", r"landmark_attention.0.1.\1"),
    (rf"lmark_att\.3\.{_P}", r"landmark_attention.1.0.\1"),
    (rf"lmark_att\.4\.{_P}", r"landmark_attention.1.1.\1"),
    (rf"lmark_att\.6\.0\.{_P}", r"landmark_attention.2.\1"),
    (rf"bottle_neck\.0\.([01])\.{_P}", r"bottleneck.\1.\2"),
    (r"convGRU\.weight_ih_l0", r"temporal.conv_x.weight"),
    (r"convGRU\.bias_ih_l0", r"temporal.conv_x.bias"),
    (r"convGRU\.weight_hh_l0", r"temporal.conv_h.weight"),
    (r"convGRU\.bias_hh_l0", r"temporal.conv_h.bias"),
    # generator1: 9 ResnetBlocks (conv_block 0 conv, 1 BN, 4 conv, 5 BN), then ConvT 9, BN 10, ConvT 12, BN 13
    (rf"generator1\.([0-8])\.conv_block\.([0145])\.{_P}", r"decoder1.\1.block.\2.\3"),
    (rf"generator1\.9\.{_P}", r"decoder1.9.0.\1"),
    (rf"generator1\.10\.{_P}", r"decoder1.9.1.\1"),
    (rf"generator1\.12\.{_P}", r"decoder1.10.0.\1"),
    (rf"generator1\.13\.{_P}", r"decoder1.10.1.\1"),
    (rf"base\.0\.{_P}", r"decoder2.0.0.\1"),
    (rf"base\.1\.{_P}", r"decoder2.0.1.\1"),
    (rf"base\.3\.{_P}", r"decoder2.1.0.\1"),
    (rf"base\.4\.{_P}", r"decoder2.1.1.\1"),
    (r"generator_color\.0\.(weight|bias)", r"head.color.\1"),  # merged into head below
    (r"generator_attention\.0\.(weight|bias)", r"head.attention.\1"),
)


def strip_data_parallel(state: Mapping[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """`state` without DataParallel's `module.` prefix (all keys have it, or none). Raises AuthorsKeyError when
    only some have it, or when `state` is not a mapping of str to tensors."""
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise AuthorsKeyError(f"{what}: not a state dict (a mapping of names to tensors)")
    prefixed = [k.startswith(PREFIX) for k in state]
    if any(prefixed) and not all(prefixed):
        raise AuthorsKeyError(f"{what}: some keys start with {PREFIX!r} and some do not, e.g. "
                              f"{next(k for k in state if not k.startswith(PREFIX))!r}")
    return {k[len(PREFIX):] if k.startswith(PREFIX) else k: v for k, v in state.items()}


def _renamed(state: dict[str, torch.Tensor], rules: tuple[tuple[str, str], ...],
             what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(talkface key -> tensor, talkface key -> the authors' key) of `state` renamed by `rules`. Raises
    AuthorsKeyError naming keys no rule knows."""
    out, names, unknown = {}, {}, []
    for key, value in state.items():
        for pattern, target in rules:
            m = re.fullmatch(pattern, key)
            if m:
                ours = m.expand(target)
                out[ours], names[ours] = value, key
                break
        else:
            unknown.append(key)
    if unknown:
        raise AuthorsKeyError(f"{what}: {len(unknown)} key(s) the authors' module does not have: "
                              f"{', '.join(sorted(unknown)[:8])}")
    return out, names


def atnet_state(authors: Mapping[str, torch.Tensor], model: nn.Module, what: str = "AT-net") -> dict[str, torch.Tensor]:
    """The authors' `AT_net` state dict (with or without `module.`) as a state dict of talkface's `ATNet` `model`
    (the paper preset). Raises AuthorsKeyError naming a key that is unknown, missing or of another shape."""
    return matched_state(*_renamed(strip_data_parallel(authors, what), ATNET_RULES, what), model, what)


def vgnet_state(authors: Mapping[str, torch.Tensor], model: nn.Module, what: str = "VG-net") -> dict[str, torch.Tensor]:
    """The authors' `VG_net` state dict (with or without `module.`) as a state dict of talkface's `VGNet` `model`
    (the paper preset; its `head` = cat[generator_color.0, generator_attention.0] over output channels). Raises
    AuthorsKeyError naming a key that is unknown, missing or of another shape."""
    mapped, names = _renamed(strip_data_parallel(authors, what), VGNET_RULES, what)
    for part in ("weight", "bias"):
        color, attention = mapped.pop(f"head.color.{part}", None), mapped.pop(f"head.attention.{part}", None)
        if color is None or attention is None:
            raise AuthorsKeyError(f"{what}: missing generator_{'color' if color is None else 'attention'}.0.{part}")
        if color.shape[1:] != attention.shape[1:] or color.shape[0] != 3 or attention.shape[0] != 1:
            raise AuthorsKeyError(f"{what}: generator_color.0.{part} {tuple(color.shape)} and generator_attention.0."
                                  f"{part} {tuple(attention.shape)} are not a 3-channel and a 1-channel head")
        mapped[f"head.{part}"] = torch.cat([color, attention])
        names[f"head.{part}"] = f"generator_color.0.{part} + generator_attention.0.{part}"
    return matched_state(mapped, names, model, what)


def _which(state: object) -> str | None:
    """"atnet" or "vgnet" for a released state dict by the keys only that network has; None for neither."""
    if not isinstance(state, Mapping):
        return None
    keys = {k.removeprefix(PREFIX) for k in state if isinstance(k, str)}
    if any(k.startswith("audio_eocder.") for k in keys):
        return "atnet"
    if any(k.startswith("convGRU.") for k in keys):
        return "vgnet"
    return None


def import_released(files: Sequence[Path], basics: Path | None = None) -> Released:
    """The authors' two files (`atnet_lstm_18.pth`, `generator_23.pth`, in either order: each is recognised by its
    keys) as a `models.weights.Released` of AT-net and VG-net at the paper preset, for the authors' protocol
    (`authors_generator`): atnet.pt carries their constants (`authors_protocol.load_basics(basics)`, default: the
    shipped copy). Both files are read with `torch.load(weights_only=True)`. Raises FileNotFoundError for a missing
    file, ValueError when a file is not one of the two (naming it), when one is missing or given twice, and
    AuthorsKeyError (a ValueError) naming a key or shape that does not map."""
    from models.atvgnet import authors_generator
    from models.atvgnet import authors_protocol

    found: dict[str, tuple[Path, dict]] = {}
    for path in map(Path, files):
        state = load_file(path, "ATVGnet weights")
        which = _which(state)
        if which is None:
            raise ValueError(f"{path}: neither the authors' AT-net (audio_eocder.*) nor their VG-net (convGRU.*)")
        if which in found:
            raise ValueError(f"{path} and {found[which][0]} both hold the authors' {which}: give one of each")
        found[which] = (path, state)
    missing = [f"{name} ({file})" for name, file in (("atnet", "atnet_lstm_18.pth"), ("vgnet", "generator_23.pth"))
               if name not in found]
    if missing:
        raise ValueError(f"the authors' ATVGnet needs both files; missing {', '.join(missing)}")
    atnet_cfg, vgnet_cfg = ATNetConfig.preset("paper"), VGNetConfig.preset("paper")  # the authors' sizes
    atnet = atnet_state(found["atnet"][1], ATNet(atnet_cfg), f"AT-net ({found['atnet'][0].name})")
    vgnet = vgnet_state(found["vgnet"][1], VGNet(vgnet_cfg), f"VG-net ({found['vgnet'][0].name})")
    constants = authors_protocol.load_basics(Path(basics) if basics else authors_protocol.BASICS)
    protocol = authors_generator.PROTOCOL
    return Released(
        stages={"atnet": {"modules": {"atnet": atnet}, "config": {"model": atnet_cfg.to_dict()},
                          "extra": {"protocol": protocol, "basics": authors_generator.basics_to_extra(constants)}},
                "vgnet": {"modules": {"generator": vgnet}, "config": {"generator": vgnet_cfg.to_dict()},
                          "extra": {"protocol": protocol}}},
        alias="authors", trained_on="lrw")
