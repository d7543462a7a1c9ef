"""The store's named crops (`storage.crops`): the three specs of DESIGN's store table, and build parameters that
name an unknown crop, leave out `face` or give a square crop two sides refused with the reason."""
from __future__ import annotations

import pytest

from storage.crops import CROPS, DEFAULT_CROPS, FACE, FACE_SDA, MOUTH, check_crops, format_crop, parse_crop
from tasks import align


def test_the_three_crops_of_the_store_table():
    assert DEFAULT_CROPS == {"face": (128, 128), "mouth": (64, 64), "face_sda": (128, 96)}
    assert (FACE.field, MOUTH.field, FACE_SDA.field) == ("face", "mouth", "face_sda")
    assert CROPS["face_sda"].points == (33, 36, 39, 42, 45) and CROPS["mouth"].points == tuple(range(48, 68))


@pytest.mark.parametrize("text,parsed", [
    ("face_sda=128x96", ("face_sda", (128, 96))), ("mouth", ("mouth", (64, 64))),
    (" face = 256X256 ", ("face", (256, 256))),
])
def test_parse_crop(text, parsed):
    assert parse_crop(text) == parsed
    assert parse_crop(format_crop(*parsed)) == parsed


@pytest.mark.parametrize("text,message", [("lips=64x64", "unknown crop lips; the store's crops are face, mouth"),
                                          ("face=128", "not NAME or NAME=HxW")])
def test_parse_crop_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        parse_crop(text)


@pytest.mark.parametrize("crops,message", [
    ({"face": (128, 128), "eyes": (32, 64)}, "unknown crop eyes"),
    ({"mouth": (64, 64)}, "must include 'face'"),
    ({"face": (128, 96)}, "crop face is square: got 128x96"),
    ({"face": (128, 128), "face_sda": (1024, 96)}, "each side must be 16–512 px"),
])
def test_check_crops_refuses(crops, message):
    with pytest.raises(ValueError, match=message):
        check_crops(crops)


def test_check_crops_keeps_the_store_order():
    assert list(check_crops({"face_sda": [128, 96], "face": (128, 128)})) == ["face", "face_sda"]


def test_every_crop_has_an_alignment():
    import numpy as np

    lm = np.random.default_rng(0).uniform(50, 250, (3, 68, 2)).astype(np.float32)
    for name, spec in CROPS.items():
        assert align.crop_transforms(name, spec.default_size, lm).shape == (3, 2, 3)
    with pytest.raises(ValueError, match="no alignment for crop 'lips'"):
        align.crop_transforms("lips", (64, 64), lm)
