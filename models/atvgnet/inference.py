"""ATVGnet's trained networks for inference: AT-net with its landmark PCA basis, and VG-net's generator, from a
training checkpoint or a model directory's inference file (`models.weights`)."""
from __future__ import annotations

from pathlib import Path

import torch

from models.atvgnet.at_net import ATNet, ATNetConfig
from models.atvgnet.vg_net import VGNet, VGNetConfig
from models.weights import load_module, read_weights
from storage.landmark_pca import LandmarkPCA, from_dict as pca_from_dict

SYSTEM = "atvgnet"


def load_atnet(path: Path, device: str | torch.device = "cpu") -> tuple[ATNet, LandmarkPCA, dict]:
    """(AT-net in eval mode on `device`, its LandmarkPCA (6 components, the store's crop size), the raw dict).
    Raises as `models.weights.read_weights` (another stage's file included)."""
    state = read_weights(path, SYSTEM, "atnet")
    model = ATNet(ATNetConfig.from_dict(state["config"]["model"]))
    load_module(model, state["modules"]["atnet"], path, "AT-net")
    return model.to(device).eval(), pca_from_dict(state["extra"]["pca"]), state


def load_vgnet(path: Path, device: str | torch.device = "cpu") -> tuple[VGNet, dict]:
    """(VG-net generator in eval mode on `device`, the raw dict). Raises as `models.weights.read_weights`, and
    ValueError (`models.weights.load_module`) for weights of VG-net's older ConvGRU (before issue 15): retrain."""
    state = read_weights(path, SYSTEM, "vgnet")
    generator = VGNet(VGNetConfig.from_dict(state["config"]["generator"]))
    load_module(generator, state["modules"]["generator"], path, "VG-net")
    return generator.to(device).eval(), state
