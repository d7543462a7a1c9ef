"""Audio features: MFCC exactly as python_speech_features computes them, the definition ATVGnet uses.

Source: ATVGnet (Chen et al. CVPR 2019) public code — `python_speech_features.mfcc(speech, 16000, winstep=0.01)`
on a 16 kHz waveform in [-1, 1]: 25 ms Hamming-free (rectangular) window, 10 ms hop, 13 cepstra, 26 mel filters,
512-point FFT, pre-emphasis 0.97, lifter 22, c0 replaced by the log frame energy.
"""
from __future__ import annotations

import numpy as np
import python_speech_features as psf

SAMPLE_RATE = 16000
WIN_S, HOP_S = 0.025, 0.010
MFCC_PER_VIDEO_FRAME = 4  # 100 Hz MFCC / 25 fps video


def mfcc(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """MFCC float32 (A, 13) at 100 Hz from a waveform int16 (S,) (or float in [-1, 1]).

    A = 1 + ceil((S − 400) / 160) for S ≥ 400 at 16 kHz (python_speech_features zero-pads the last frame).
    Raises ValueError for an empty waveform.
    """
    if audio.size == 0:
        raise ValueError("empty waveform")
    signal = audio.astype(np.float64) / 32768.0 if audio.dtype == np.int16 else audio.astype(np.float64)
    feats = psf.mfcc(
        signal, samplerate=sample_rate, winlen=WIN_S, winstep=HOP_S, numcep=13, nfilt=26, nfft=512,
        preemph=0.97, ceplifter=22, appendEnergy=True,
    )
    return feats.astype(np.float32)


def n_mfcc_frames(n_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """How many MFCC frames `mfcc` returns for `n_samples` samples."""
    win, hop = round(WIN_S * sample_rate), round(HOP_S * sample_rate)
    return 1 if n_samples <= win else 1 + int(np.ceil((n_samples - win) / hop))
