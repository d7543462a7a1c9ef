"""Vougioukas, Petridis, Pantic 2019 temporal GAN ("Realistic Speech-Driven Facial Animation with GANs", IJCV):
in progress (issue 13). So far the generator (`generator.py`: identity encoder with U-Net skips, raw-waveform audio
encoder, content and noise GRUs, frame decoder), the frame, sequence and sync discriminators (`discriminators.py`,
our designs), the whole-utterance samples of a store (`data.py`) and the losses with their samples and Tab. 5/6
switches (`losses.py`), and its training stage on the one loop (`stages.py`, `SDAStage`); not registered as a
system yet (no generator wrapper for generate/evaluate, no lip reader).
Spec: shared/specs/vougioukas2019-sda.md."""
from models.sda.data import UtteranceDataset
from models.sda.discriminators import (DiscriminatorsConfig, FrameDiscriminator, SequenceDiscriminator,
                                       SyncDiscriminator)
from models.sda.generator import SDAGenerator, SDAGeneratorConfig, audio_windows
from models.sda.losses import SDALossConfig
from models.sda.stages import SDAStage, SDATrainConfig

__all__ = ["UtteranceDataset", "SDAGenerator", "SDAGeneratorConfig", "audio_windows", "DiscriminatorsConfig",
           "FrameDiscriminator", "SequenceDiscriminator", "SyncDiscriminator", "SDALossConfig", "SDAStage",
           "SDATrainConfig"]
