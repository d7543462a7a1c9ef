"""ATVGnet (Chen et al., CVPR 2019): AT-net (audio -> landmark PCA) here; VG-net and its discriminator to come."""
from models.atvgnet.at_net import ATNet, ATNetConfig

__all__ = ["ATNet", "ATNetConfig"]
