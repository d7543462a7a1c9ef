"""ATVGnet (Chen et al., CVPR 2019): AT-net (audio -> landmark PCA), VG-net (landmarks + example face -> frames),
its regression discriminator and losses."""
from models.atvgnet.at_net import ATNet, ATNetConfig
from models.atvgnet.discriminator import DiscriminatorConfig, RegressionDiscriminator
from models.atvgnet.losses import VGNetLossConfig, discriminator_loss, generator_loss
from models.atvgnet.vg_net import VGNet, VGNetConfig

__all__ = ["ATNet", "ATNetConfig", "VGNet", "VGNetConfig", "RegressionDiscriminator", "DiscriminatorConfig",
           "VGNetLossConfig", "generator_loss", "discriminator_loss"]
