"""ATVGnet (Chen et al., CVPR 2019): AT-net (audio -> landmark PCA), VG-net (landmarks + example face -> frames),
its regression discriminator and losses; `SYSTEM` registers its two training stages. The authors' released
weights: `authors_keys` (their state dicts mapped), `authors_protocol` and `authors_generator` (rendered by their
protocol)."""
from models.atvgnet.at_net import ATNet, ATNetConfig
from models.atvgnet.authors_keys import import_released
from models.atvgnet.discriminator import DiscriminatorConfig, RegressionDiscriminator
from models.atvgnet.generator import ATVGnetGenerator
from models.atvgnet.losses import VGNetLossConfig, discriminator_loss, generator_loss
from models.atvgnet.stages import ATNetStage, ATNetTrainConfig, VGNetStage, VGNetTrainConfig
from models.atvgnet.vg_net import VGNet, VGNetConfig
from models.system import System
from storage.crops import FACE

SYSTEM = System(
    name="atvgnet",
    paper="Chen, Maddox, Duan, Xu. Hierarchical Cross-Modal Talking Face Generation with Dynamic Pixel-Wise Loss. "
          "CVPR 2019",
    stages=(ATNetStage(), VGNetStage()),
    crop=FACE,
    metrics=frozenset({"psnr", "ssim", "lmd", "lmd_a2l", "cpbd", "acd", "blinks_per_s", "av_offset", "av_confidence",
                       "wer"}),
    generator=ATVGnetGenerator,
    importer=import_released,
)

__all__ = ["SYSTEM", "ATVGnetGenerator", "ATNet", "ATNetConfig", "ATNetTrainConfig", "VGNet", "VGNetConfig",
           "VGNetTrainConfig",
           "RegressionDiscriminator", "DiscriminatorConfig", "VGNetLossConfig", "generator_loss", "discriminator_loss"]
