"""MFCC as DESIGN defines it (python_speech_features' definition, ATVGnet's input), on a real clip's audio."""
from __future__ import annotations

import numpy as np

from storage import audio
from tasks import media


def test_mfcc_shape_rate_and_log_energy(sample_clip):
    wave = media.decode(sample_clip).audio
    feats = audio.mfcc(wave)
    assert feats.dtype == np.float32 and feats.shape == (audio.n_mfcc_frames(len(wave)), 13)
    assert abs(len(feats) / 100 - len(wave) / 16000) < 0.02  # 100 Hz
    # c0 is the log energy of each pre-emphasised 25 ms frame's 512-point power spectrum (python_speech_features)
    x = wave.astype(np.float64) / 32768.0
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])
    frame = x[160 * 40 : 160 * 40 + 400]
    power = np.abs(np.fft.rfft(frame, 512)) ** 2 / 512
    assert np.isclose(feats[40, 0], np.log(power.sum()), rtol=1e-4)


def test_speech_and_silence_differ_in_energy(sample_clip):
    wave = media.decode(sample_clip).audio
    feats = audio.mfcc(wave)
    # GRID clips begin with silence (the .align's first "sil" ends at frame 23 = 92 MFCC frames)
    assert feats[:60, 0].mean() < feats[100:200, 0].mean() - 2
