"""Vougioukas, Petridis, Pantic 2019 temporal GAN ("Realistic Speech-Driven Facial Animation with GANs", IJCV):
in progress (issue 13). So far the generator (`generator.py`: identity encoder with U-Net skips, raw-waveform audio
encoder, content and noise GRUs, frame decoder); not registered as a system yet. Spec:
shared/specs/vougioukas2019-sda.md."""
from models.sda.generator import SDAGenerator, SDAGeneratorConfig, audio_windows

__all__ = ["SDAGenerator", "SDAGeneratorConfig", "audio_windows"]
