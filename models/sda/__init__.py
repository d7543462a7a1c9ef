"""Vougioukas, Petridis, Pantic 2019 temporal GAN ("Realistic Speech-Driven Facial Animation with GANs", IJCV): the
generator (`generator.py`: identity encoder with U-Net skips, raw-waveform audio encoder, content and noise GRUs,
frame decoder), the frame, sequence and sync discriminators (`discriminators.py`, our designs), the whole-utterance
samples of a store (`data.py`), the losses with their samples and Tab. 5/6 switches (`losses.py`), the training
stage on the one loop with the paper's decay (`stages.py`) and the generator for inference (`inference.py`,
`SDATalker`: 128×96 `face_sda` faces from a still and any length of speech), and the authors' released generators
(`authors_file.py`: their `.dat` read safely and mapped; `authors_protocol.py`: rendered by their protocol).
`SYSTEM` registers it as "sda". Spec: shared/specs/vougioukas2019-sda.md."""
from models.sda.authors_file import import_released
from models.sda.data import UtteranceDataset
from models.sda.discriminators import (DiscriminatorsConfig, FrameDiscriminator, SequenceDiscriminator,
                                       SyncDiscriminator)
from models.sda.generator import SDAGenerator, SDAGeneratorConfig, audio_windows
from models.sda.inference import SDATalker
from models.sda.losses import SDALossConfig
from models.sda.stages import SDAStage, SDATrainConfig
from models.system import System
from storage.crops import FACE_SDA

SYSTEM = System(
    name="sda",
    paper="Vougioukas, Petridis, Pantic. Realistic Speech-Driven Facial Animation with GANs. IJCV 2019",
    stages=(SDAStage(),),
    crop=FACE_SDA,
    metrics=frozenset({"psnr", "ssim", "lmd", "cpbd", "acd", "blinks_per_s", "av_offset", "av_confidence", "wer"}),
    generator=SDATalker,
    importer=import_released,
)

__all__ = ["SYSTEM", "SDATalker", "UtteranceDataset", "SDAGenerator", "SDAGeneratorConfig", "audio_windows",
           "DiscriminatorsConfig", "FrameDiscriminator", "SequenceDiscriminator", "SyncDiscriminator",
           "SDALossConfig", "SDAStage", "SDATrainConfig"]
