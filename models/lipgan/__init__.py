"""Chen et al. 2018 lip GAN ("Lip Movements Generation at a Glance", ECCV 2018): the networks. Generator (identity
mouth crop + log-mel window -> 3-D clip and audio features f_s), three- and two-stream discriminators, the
correlation encoders φ_s / φ_v and their loss, the perceptual mouth autoencoder, and the motion inputs (a small
distilled flow CNN, its Farneback target, frame differences). Spec: shared/specs/chen2018-lipgan.md."""
from models.lipgan.correlation import AudioDerivativeEncoder, CorrelationConfig, MotionEncoder, correlation_loss
from models.lipgan.discriminator import DiscriminatorConfig, ThreeStreamDiscriminator, TwoStreamDiscriminator
from models.lipgan.flow import FlowNetConfig, MouthFlowNet, farneback_flow, frame_differences
from models.lipgan.generator import GeneratorConfig, LipGANGenerator
from models.lipgan.perceptual import MouthAutoencoder, PerceptualConfig

__all__ = ["GeneratorConfig", "LipGANGenerator", "DiscriminatorConfig", "ThreeStreamDiscriminator",
           "TwoStreamDiscriminator", "CorrelationConfig", "AudioDerivativeEncoder", "MotionEncoder", "correlation_loss",
           "PerceptualConfig", "MouthAutoencoder", "FlowNetConfig", "MouthFlowNet", "farneback_flow",
           "frame_differences"]
