"""Audio features of the store's 16 kHz mono audio.

- `mfcc`: exactly as python_speech_features computes them, the definition ATVGnet uses. Source: ATVGnet (Chen et
  al. CVPR 2019) public code — `python_speech_features.mfcc(speech, 16000, winstep=0.01)` on a 16 kHz waveform in
  [-1, 1]: 25 ms Hamming-free (rectangular) window, 10 ms hop, 13 cepstra, 26 mel filters, 512-point FFT,
  pre-emphasis 0.97, lifter 22, c0 replaced by the log frame energy.
- `log_mel`: the log-mel spectrogram of Chen et al. ECCV 2018 (their code: librosa melspectrogram, 128 mels,
  power_to_db; 4 mel frames per video frame) at this store's 16 kHz [D, `../shared/specs/chen2018-lipgan.md` §1]:
  librosa, n_fft 512, Hann window of 400 samples (25 ms), hop 160 (10 ms), 128 mels up to 8 kHz, centred frames,
  dB re 1 with an 80 dB floor. Mel frame m is centred on sample 160·m, so video frame k (samples [640k, 640k + 640))
  owns mel frames 4k … 4k + 3.
"""
from __future__ import annotations

import numpy as np
import python_speech_features as psf

SAMPLE_RATE = 16000
WIN_S, HOP_S = 0.025, 0.010
MFCC_PER_VIDEO_FRAME = 4  # 100 Hz MFCC / 25 fps video
MEL_N_FFT, MEL_WIN, MEL_HOP, N_MELS, MEL_FMAX, MEL_TOP_DB = 512, 400, 160, 128, 8000.0, 80.0
MELS_PER_VIDEO_FRAME = 4  # 100 Hz mel frames / 25 fps video


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


def log_mel(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS) -> np.ndarray:
    """Log-mel spectrogram float32 (M, n_mels) in dB at 100 Hz from a waveform int16 (S,) (or float in [-1, 1]):
    M = 1 + S // 160 at 16 kHz; frame m is centred on sample 160·m (module docstring: librosa, Chen et al. 2018).
    Raises ValueError for an empty waveform or a rate other than 16 kHz (the hop is 4 frames per video frame there).
    """
    import librosa  # imports numba: only where log-mels are made

    if audio.size == 0:
        raise ValueError("empty waveform")
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"log_mel takes the store's {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    y = audio.astype(np.float32) / 32768.0 if audio.dtype == np.int16 else audio.astype(np.float32)
    power = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=MEL_N_FFT, win_length=MEL_WIN,
                                           hop_length=MEL_HOP, n_mels=n_mels, fmax=MEL_FMAX, center=True)
    return librosa.power_to_db(power, ref=1.0, top_db=MEL_TOP_DB).T.astype(np.float32)  # (M, n_mels)


def n_mel_frames(n_samples: int) -> int:
    """How many frames `log_mel` returns for `n_samples` samples at 16 kHz: 1 + S // 160."""
    return 1 + n_samples // MEL_HOP
