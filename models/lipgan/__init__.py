"""Chen et al. 2018 lip GAN ("Lip Movements Generation at a Glance", ECCV 2018): the networks. Generator (identity
mouth crop + log-mel window -> 3-D clip and audio features f_s), three- and two-stream discriminators, the
correlation encoders φ_s / φ_v and their loss, the perceptual mouth autoencoder, and the motion inputs (a small
distilled flow CNN, its Farneback target, frame differences); `SYSTEM` registers its three training stages (flow
net, perceptual autoencoder, GAN) and its generator (`LipGANTalker`, 64×64 mouths pasted back into the face).
Spec: shared/specs/chen2018-lipgan.md."""
from models.lipgan.correlation import AudioDerivativeEncoder, CorrelationConfig, MotionEncoder, correlation_loss
from models.lipgan.discriminator import DiscriminatorConfig, ThreeStreamDiscriminator, TwoStreamDiscriminator
from models.lipgan.flow import FlowNetConfig, MouthFlowNet, farneback_flow, frame_differences
from models.lipgan.generator import GeneratorConfig, LipGANGenerator
from models.lipgan.inference import LipGANTalker
from models.lipgan.perceptual import MouthAutoencoder, PerceptualConfig
from models.lipgan.stages import FlowNetStage, LipGANStage, LipGANTrainConfig, PerceptualStage
from models.system import System
from storage.crops import MOUTH

SYSTEM = System(
    name="lipgan",
    paper="Chen, Li, Maddox, Duan, Xu. Lip Movements Generation at a Glance. ECCV 2018",
    stages=(FlowNetStage(), PerceptualStage(), LipGANStage()),
    crop=MOUTH,
    metrics=frozenset({"psnr", "ssim", "lmd", "cpbd", "av_offset", "av_confidence", "wer"}),
    generator=LipGANTalker,
)

__all__ = ["SYSTEM", "LipGANTalker", "LipGANStage", "LipGANTrainConfig", "GeneratorConfig", "LipGANGenerator",
           "DiscriminatorConfig", "ThreeStreamDiscriminator",
           "TwoStreamDiscriminator", "CorrelationConfig", "AudioDerivativeEncoder", "MotionEncoder", "correlation_loss",
           "PerceptualConfig", "MouthAutoencoder", "FlowNetConfig", "MouthFlowNet", "farneback_flow",
           "frame_differences"]
