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


def test_log_mel_shape_and_rate(sample_clip):
    wave = media.decode(sample_clip).audio
    mel = audio.log_mel(wave)
    assert mel.dtype == np.float32 and mel.shape == (audio.n_mel_frames(len(wave)), 128)
    assert mel.max() - mel.min() <= 80 + 1e-3  # dB re 1, an 80 dB floor
    # GRID clips begin with silence (the first "sil" ends at video frame 23): quieter than the speech
    assert mel[:60].mean() < mel[100:200].mean() - 10


def test_log_mel_frames_belong_to_video_frame_k_over_4(grid_store):
    from storage.dataset import ClipReader, ok_clips

    row = next(ok_clips(grid_store, "train").itertuples(index=False))
    wave = ClipReader(grid_store).audio(row)  # the store's 16 kHz audio of a real clip
    # every video frame but the last has its 4 mel frames (the store's audio may be up to a frame shorter than its
    # video, DESIGN: |S / 640 - N| <= 1; readers pad the last window)
    assert len(audio.log_mel(wave)) >= 4 * (int(row.n_frames) - 1)
    for k in (20, 40, 60):
        only_k = np.zeros_like(wave)
        only_k[640 * k : 640 * (k + 1)] = wave[640 * k : 640 * (k + 1)]  # the sound of video frame k alone
        db = audio.log_mel(only_k)
        heard = np.flatnonzero(db.max(1) > db.min() + 1)  # mel frames above the 80 dB floor
        # a 400-sample window centred on 160·m: frames 4k … 4k+4 (centred inside frame k or on its end), and 4k-1
        # and 4k+5, whose windows reach 40 samples into it; the power's centre of mass falls on the middle of frame
        # k's four mel frames (index 4k + 2): mel frame m belongs to video frame m // 4
        assert set(heard) <= set(range(4 * k - 1, 4 * k + 6)) and {4 * k + 1, 4 * k + 2} <= set(heard), (k, heard)
        power = (10 ** (db / 10)).sum(1)
        centre = float((np.arange(len(power)) * power).sum() / power.sum())
        assert int(centre) // 4 == k and abs(centre - (4 * k + 2)) < 0.5, (k, centre)


def test_log_mel_refuses_other_rates():
    import pytest

    with pytest.raises(ValueError, match="16000 Hz"):
        audio.log_mel(np.ones(8000, np.int16), 8000)
