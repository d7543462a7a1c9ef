"""Zheng, Zhu, Zhu, Luo, He (ICPR 2020): semantic and temporal synchronous landmarks. A word detector and a
mutual-information estimator, trained first and then frozen, shape the losses of A2L (audio -> 68 landmarks); L2F
(a U-Net on the identity face and landmark heatmaps) renders the frames. `SYSTEM` registers the four stages."""
from models.system import System
from models.zheng.a2l import A2L, A2LConfig
from models.zheng.generator import ZhengGenerator
from models.zheng.l2f import L2FConfig, PatchDiscriminator, UNetGenerator
from models.zheng.mi import MIEstimator, MIEstimatorConfig
from models.zheng.stages import A2LStage, L2FStage, MIStage, WordStage
from models.zheng.word_detector import WordDetector, WordDetectorConfig
from storage.crops import FACE

SYSTEM = System(
    name="zheng",
    paper="Zheng, Zhu, Zhu, Luo, He. Talking Face Generation via Learning Semantic and Temporal Synchronous "
          "Landmarks. ICPR 2020",
    stages=(WordStage(), MIStage(), A2LStage(), L2FStage()),
    crop=FACE,
    metrics=frozenset({"psnr", "ssim", "lmd", "lmd_a2l", "cpbd", "acd", "blinks_per_s", "av_offset", "av_confidence",
                       "wer"}),
    generator=ZhengGenerator,
)

__all__ = ["SYSTEM", "ZhengGenerator", "A2L", "A2LConfig", "WordDetector", "WordDetectorConfig", "MIEstimator",
           "MIEstimatorConfig", "UNetGenerator", "PatchDiscriminator", "L2FConfig"]
