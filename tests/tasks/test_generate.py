"""Inference (`tasks.generate`, with ATVGnet's generator `models.atvgnet.generator`) on real inputs only.

Inputs are made with ffmpeg from the bundled GRID clips: a still face image (a frame of s1/bbaf2n, also as a large
JPEG), speech from other clips (an .mpg used as is, a 44.1 kHz stereo wav, a 3.7 s 22.05 kHz mono .m4a — the 3 s
clip looped and cut — whose length is not a whole number of frames), a face-less image (ffmpeg's testsrc) and a
video without audio. The AT-net is trained for 5 steps (small preset) on the real `grid_store`; the VG-net is the
real `VGNet`, small preset, seeded random init: these tests check the plumbing (shapes, conventions, lengths,
streams), not picture quality.
"""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import ffmpeg
import numpy as np
import pytest
import torch

from models.atvgnet.at_net import ATNetConfig
from models.atvgnet.vg_net import VGNet, VGNetConfig
from storage.dataset import ClipReader, ok_clips
from storage import audio
from tasks import media
from models.atvgnet.generator import ATVGnetGenerator, predict_landmarks, render_frames
from models.atvgnet.inference import load_atnet
from storage.crops import FACE, FACE_SDA, MOUTH
from storage.landmark_pca import normalise
from tasks.evaluation import crop_landmarks
from tasks.generate import (GenerateError, generate, n_video_frames, paste_back, prepare_audio,
                            prepare_photo, write_video)
from tests.conftest import train_small

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "grid"
FACE_CLIP, FACE_FRAME = "s1/bbaf2n", 10


def run_ffmpeg(stream) -> None:
    stream.global_args("-hide_banner", "-nostdin", "-loglevel", "error").run(
        cmd=media.ffmpeg_exe(), overwrite_output=True, capture_stdout=True, capture_stderr=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("generate-inputs")
    f = {
        "face": d / "face.png",  # frame 10 of s1/bbaf2n, as the build decodes it (25 fps, RGB)
        "face_large": d / "face-1440x1152.jpg",  # the same frame as a large JPEG photo
        "noface": d / "testsrc.png",
        "speech_mpg": SAMPLES / "s1" / "lwik8n.mpg",  # another clip's speech, its container as is
        "stereo_wav": d / "speech-44k-stereo.wav",
        "odd_m4a": d / "speech-3.7s-22k.m4a",
        "text": d / "speech.wav",  # a text file with an audio name
        "silent_video": d / "no-audio.mp4",
    }
    run_ffmpeg(ffmpeg.input(str(SAMPLES / f"{FACE_CLIP}.mpg")).video.filter("fps", fps=25)
               .filter("select", f"eq(n,{FACE_FRAME})").output(str(f["face"]), vframes=1))
    run_ffmpeg(ffmpeg.input(str(f["face"])).filter("scale", 1440, 1152).output(str(f["face_large"]), q=2))
    run_ffmpeg(ffmpeg.input("testsrc=size=360x288:rate=25", f="lavfi").output(str(f["noface"]), vframes=1))
    run_ffmpeg(ffmpeg.input(str(SAMPLES / "s1" / "bbie9s.mpg")).audio
               .output(str(f["stereo_wav"]), ar=44100, ac=2, acodec="pcm_s16le"))
    run_ffmpeg(ffmpeg.input(str(SAMPLES / "s1" / "bbie9s.mpg"), stream_loop=1).audio  # 3 s clip played twice, cut
               .output(str(f["odd_m4a"]), ar=22050, ac=1, t=3.7, acodec="aac"))
    f["text"].write_text("this is not audio\n")
    run_ffmpeg(ffmpeg.input("testsrc=size=128x128:rate=25:duration=1", f="lavfi").output(str(f["silent_video"])))
    return f


@pytest.fixture(scope="module")
def atnet_ckpt(grid_store, tmp_path_factory) -> Path:
    return train_small(grid_store, tmp_path_factory.mktemp("atnet"), "atvgnet", "atnet", steps=5, batch_size=4,
                       stride=30, checkpoint_every=0).last_checkpoint


@pytest.fixture
def vgnet() -> VGNet:
    torch.manual_seed(0)
    return VGNet(VGNetConfig.preset("small")).eval()


@pytest.fixture
def generator(atnet_ckpt, vgnet) -> ATVGnetGenerator:
    atnet, pca, _ = load_atnet(atnet_ckpt, "cpu")
    return ATVGnetGenerator(atnet, pca, vgnet)


@pytest.fixture(scope="module")
def face(files):
    photo = prepare_photo(files["face"])
    return photo.crop, photo.landmarks


# ------------------------------------------------------------------------------------------------------ face


@pytest.mark.parametrize("crop", [FACE, MOUTH, FACE_SDA], ids=lambda c: c.field)
def test_prepare_photo_matches_the_build(files, crop, grid_store):
    photo = prepare_photo(files["face"], crop)
    assert photo.crop.dtype == np.uint8 and photo.crop.shape == (*crop.size, 3)
    assert photo.landmarks.dtype == np.float32 and photo.landmarks.shape == (68, 2)
    rows = ok_clips(grid_store, "train")
    row = rows[rows["clip_id"] == FACE_CLIP].iloc[0]
    reader = ClipReader(grid_store)
    build_landmarks = crop_landmarks(reader, row, crop, window=7)[FACE_FRAME]
    build_crop = reader.crops(row, crop.field)[FACE_FRAME]
    # the build smooths its alignment points over 7 frames; a still image has one, so a little difference remains
    # (the mouth crop, 1/1.3 of its side the lips' extent, magnifies it about 2x)
    error = np.linalg.norm(photo.landmarks - build_landmarks, axis=1) / (2 if crop.field == "mouth" else 1)
    assert error.mean() < 1.5 and error.max() < 3.0, error.round(2)
    assert np.abs(photo.crop.astype(int) - build_crop.astype(int)).mean() < 12


def test_prepare_photo_on_a_large_photo(files, face):
    # detected on a copy scaled to 1280 px, landmarks predicted at full size: the same crop as from the small frame
    photo = prepare_photo(files["face_large"])
    crop, landmarks = photo.crop, photo.landmarks
    assert crop.shape == (128, 128, 3) and landmarks.shape == (68, 2)
    error = np.linalg.norm(landmarks - face[1], axis=1)
    assert error.mean() < 1.5, error.round(2)


def test_prepare_photo_errors(files, tmp_path):
    with pytest.raises(GenerateError, match=r"no face found in .*testsrc\.png"):
        prepare_photo(files["noface"])
    with pytest.raises(GenerateError, match=r"cannot read image .*speech\.wav"):
        prepare_photo(files["text"])
    with pytest.raises(GenerateError, match="cannot read image"):
        prepare_photo(tmp_path / "missing.jpg")


# ----------------------------------------------------------------------------------------------------- audio


@pytest.mark.parametrize("name, seconds", [("speech_mpg", 3.0), ("stereo_wav", 3.0), ("odd_m4a", 3.7)])
def test_prepare_audio_any_format(files, name, seconds):
    wave, mfcc, n_frames = prepare_audio(files[name])
    assert wave.dtype == np.int16 and wave.ndim == 1
    assert abs(len(wave) / 16000 - seconds) < 0.03, len(wave)
    assert n_frames == -(-len(wave) // 640)
    assert mfcc.dtype == np.float32 and mfcc.shape == (audio.n_mfcc_frames(len(wave)), 13)
    assert np.abs(wave).max() > 1000  # speech, not silence


def test_prepare_audio_downmixes_stereo_to_the_same_speech(files):
    # the 44.1 kHz stereo wav holds bbie9s's audio: back at 16 kHz mono it is the build's waveform of that clip
    stereo, _, _ = prepare_audio(files["stereo_wav"])
    direct = media.decode_audio(SAMPLES / "s1" / "bbie9s.mpg")
    n = min(len(stereo), len(direct))
    assert abs(len(stereo) - len(direct)) <= 16
    assert np.corrcoef(stereo[:n].astype(float), direct[:n].astype(float))[0, 1] > 0.99


def test_prepare_audio_errors(files, tmp_path):
    with pytest.raises(GenerateError, match=r"cannot read audio .*speech\.wav"):
        prepare_audio(files["text"])
    with pytest.raises(GenerateError, match="audio stream missing"):
        prepare_audio(files["silent_video"])
    with pytest.raises(GenerateError, match="file not found"):
        prepare_audio(tmp_path / "missing.wav")


# ------------------------------------------------------------------------------------------------- landmarks


def test_predict_landmarks(atnet_ckpt, face, files):
    _, example = face
    _, mfcc, n = prepare_audio(files["odd_m4a"])
    model, pca, _ = load_atnet(atnet_ckpt, "cpu")
    boosted = predict_landmarks(model, pca, example, mfcc, n, boost=True)
    plain = predict_landmarks(model, pca, example, mfcc, n, boost=False)
    assert boosted.dtype == np.float32 and boosted.shape == (n, 68, 2) == plain.shape and n == 93
    assert np.isfinite(boosted).all() and (boosted > -64).all() and (boosted < 192).all()
    # the PCA reconstruction: plain = pca.from_pca(model output); the boost scales components 1-5 only
    coeffs_plain, coeffs_boosted = pca.to_pca(plain), pca.to_pca(boosted)
    np.testing.assert_allclose(coeffs_boosted, coeffs_plain * [1.0, 2.2, 2.4, 2.6, 2.8, 3.0], atol=1e-4)
    # one LSTM pass over the whole utterance: it is causal, so the first 16 frames alone give the same output
    np.testing.assert_allclose(predict_landmarks(model, pca, example, mfcc, 16, boost=False), plain[:16], atol=1e-4)


# ---------------------------------------------------------------------------------------------------- frames


class Spy(torch.nn.Module):
    """Wraps a VG-net and records what render_frames feeds it."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, example_face, landmarks, example_landmarks):
        self.calls.append((example_face.clone(), landmarks.clone(), example_landmarks.clone()))
        return self.inner(example_face, landmarks, example_landmarks)


def test_render_frames_feeds_vgnet_its_conventions(vgnet, face):
    crop, example = face
    rng = np.random.default_rng(0)
    landmarks = (example + rng.normal(0, 1.5, (21, 68, 2))).astype(np.float32)  # 21 = one chunk of 16 + 5
    spy = Spy(vgnet).train()
    frames = render_frames(spy, crop, example, landmarks, batch=1)
    assert frames.dtype == np.uint8 and frames.shape == (21, 128, 128, 3)
    assert spy.training and spy.inner.training  # modes restored
    assert [tuple(c[1].shape) for c in spy.calls] == [(1, 16, 136), (1, 16, 136)]
    face_in, lm, ex = spy.calls[0]
    assert tuple(face_in.shape) == (1, 3, 128, 128) and tuple(ex.shape) == (1, 136)
    np.testing.assert_allclose(face_in[0].permute(1, 2, 0).numpy(), crop / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(ex[0].numpy(), normalise(example, 128).reshape(136), atol=1e-6)  # x0, y0, x1, ...
    np.testing.assert_allclose(lm[0, 3].numpy(), normalise(landmarks[3], 128).reshape(136), atol=1e-6)
    last = spy.calls[1][1][0]  # frames 16..31: 16..20 real, then the last landmarks repeated
    np.testing.assert_allclose(last[4].numpy(), normalise(landmarks[20], 128).reshape(136), atol=1e-6)
    np.testing.assert_allclose(last[5:].numpy(), np.repeat(last[4:5].numpy(), 11, 0))
    # the frames are VG-net's output (eval mode) in uint8; batching the chunks does not change them
    with torch.inference_mode():  # the recorded inputs are inference tensors
        out, _ = vgnet.eval()(face_in, lm, ex)
    expected = ((out[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    assert np.abs(frames[:16].astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(render_frames(vgnet, crop, example, landmarks, batch=2).astype(int) - frames).max() <= 1


# ----------------------------------------------------------------------------------------------------- video


def streams(path: Path) -> tuple[list[str], list[str]]:
    """(video stream lines, audio stream lines) of input 0 as `ffmpeg -i` reports them."""
    _, err = (ffmpeg.input(str(path)).output("-", f="null").global_args("-hide_banner", "-nostdin")
              .run(cmd=media.ffmpeg_exe(), capture_stdout=True, capture_stderr=True))
    header = err.decode("utf-8", "replace").split("Stream mapping")[0]
    lines = re.findall(r"Stream #0:\d+.*", header)
    return [ln for ln in lines if ": Video: " in ln], [ln for ln in lines if ": Audio: " in ln]


def check_mp4(path: Path, wave: np.ndarray) -> media.Decoded:
    """A playable H.264/AAC mp4 at 25 fps, 128×128, whose video and audio both last as long as `wave` (16 kHz)
    within one frame."""
    video, sound = streams(path)
    assert len(video) == 1 and len(sound) == 1, (video, sound)
    assert re.search(r"Video: h264 .*yuv420p.*128x128.* 25 fps", video[0]), video[0]
    assert "Audio: aac" in sound[0], sound[0]
    decoded = media.decode(path)  # decodes every frame and the whole audio track back
    seconds = len(wave) / 16000
    assert decoded.frames.shape[1:] == (128, 128, 3)
    assert len(decoded.frames) == n_video_frames(len(wave))
    assert 0 <= len(decoded.frames) / 25 - seconds < 1 / 25
    assert abs(len(decoded.audio) / 16000 - seconds) < 1 / 25
    assert abs(decoded.duration_s - seconds) < 1 / 25
    return decoded


def test_write_video_pads_and_trims_to_the_audio(tmp_path, files):
    wave, _, n = prepare_audio(files["odd_m4a"])  # 3.7 s -> 93 frames, the last one partly covered
    frames = np.zeros((10, 128, 128, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(10, dtype=np.uint8)[:, None, None] * 20
    short = check_mp4(write_video(frames, wave, tmp_path / "short.mp4"), wave)  # audio from `wave` itself
    assert abs(int(short.frames[-1, 64, 64, 0]) - 180) < 8  # the last frame repeated up to 93
    long = np.repeat(frames, 20, 0)  # 200 frames, trimmed to 93
    check_mp4(write_video(long, wave, tmp_path / "long.mp4", audio_path=files["odd_m4a"]), wave)


@pytest.mark.parametrize("speech", ["speech_mpg", "stereo_wav", "odd_m4a"])
def test_generate_writes_a_playable_mp4(speech, files, generator, tmp_path):
    out = tmp_path / "sub" / "talking.mp4"
    result = generate(files["face"], files[speech], out, generator, crop_only=True)
    wave = media.decode_audio(files[speech])
    n = n_video_frames(len(wave))
    assert result["frames"] == n and result["fps"] == 25 and result["seconds"] == pytest.approx(n / 25)
    assert result["size"] == (128, 128)
    decoded = check_mp4(out, wave)
    # the ORIGINAL audio is muxed: back at 16 kHz it is the input's speech
    m = min(len(wave), len(decoded.audio))
    lag = int(np.argmax(np.correlate(decoded.audio[:m].astype(float), wave[:m].astype(float)[1000:-1000])))
    assert abs(lag - 1000) <= 16  # decoded.audio[lag:] lines up with wave[1000:]: no shift beyond 1 ms
    assert np.corrcoef(decoded.audio[lag : lag + m - 2000], wave[1000 : m - 1000])[0, 1] > 0.9


def test_generate_pastes_the_face_back_into_the_photo(files, generator, tmp_path):
    photo = prepare_photo(files["face"])
    out = tmp_path / "photo talking.mp4"
    result = generate(files["face"], files["odd_m4a"], out, generator)
    assert result["size"] == (360, 288) and result["frames"] == 93  # the photo's own resolution
    video = media.decode(out)
    assert video.frames.shape == (93, 288, 360, 3)
    # where the crop does not reach, the video is the photo (up to H.264); inside, it is the generated face
    inside = np.zeros((288, 360), bool)
    corners = cv2.transform(np.array([[[0, 0], [127, 0], [127, 127], [0, 127]]], np.float64),
                            cv2.invertAffineTransform(photo.transform))[0].astype(np.int32)
    cv2.fillConvexPoly(inside.view(np.uint8), corners, 1)
    grown = cv2.dilate(inside.view(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    outside_error = np.abs(video.frames[10].astype(int) - photo.rgb.astype(int))[~grown].mean()
    inside_error = np.abs(video.frames[10].astype(int) - photo.rgb.astype(int))[inside].mean()
    assert outside_error < 3 and inside_error > 3 * outside_error, (outside_error, inside_error)


@pytest.mark.parametrize("crop", [FACE, FACE_SDA], ids=lambda c: c.field)
def test_paste_back_inverts_the_crop_transform(files, crop):
    photo = prepare_photo(files["face"], crop)
    # pasting the photo's own crop back gives the photo again inside the crop (up to two bilinear resamplings)
    back = paste_back(photo.rgb, photo.crop[None], photo.transform, feather=0)[0]
    assert back.shape == photo.rgb.shape and back.dtype == np.uint8
    x, y = cv2.transform(photo.landmarks[None, 30:31].astype(np.float64),
                         cv2.invertAffineTransform(photo.transform))[0, 0].astype(int)  # the nose tip, photo pixels
    patch = np.s_[y - 20 : y + 20, x - 20 : x + 20]
    assert np.abs(back[patch].astype(int) - photo.rgb[patch].astype(int)).mean() < 6
    white = np.full((1, *crop.size, 3), 255, np.uint8)
    blended = paste_back(np.zeros_like(photo.rgb), white, photo.transform, feather=8)[0, ..., 0]
    assert blended[y, x] == 255 and blended[0, 0] == 0 and 0 < np.median(blended[(blended > 0) & (blended < 255)])


def test_generator_loads_from_a_model_directory(files, atnet_ckpt, vgnet, tmp_path):
    # a model directory's atnet.pt and vgnet.pt (models.weights), as tasks.model_dir.export_model writes them
    atnet = torch.load(atnet_ckpt, weights_only=True)
    torch.save({**{k: atnet[k] for k in ("system", "stage", "step", "modules", "config", "extra", "store_dir")},
                "format": "talkface.weights/1"}, tmp_path / "atnet.pt")
    torch.save({"format": "talkface.weights/1", "system": "atvgnet", "stage": "vgnet",
                "config": {"generator": vgnet.cfg.to_dict()}, "modules": {"generator": vgnet.state_dict()}},
               tmp_path / "vgnet.pt")
    loaded = ATVGnetGenerator.load(tmp_path, "cpu")
    assert loaded.vgnet.cfg == vgnet.cfg and not loaded.vgnet.training and not loaded.atnet.training
    assert all(torch.equal(v, vgnet.state_dict()[k]) for k, v in loaded.vgnet.state_dict().items())
    result = generate(files["face"], files["odd_m4a"], tmp_path / "out.mp4", loaded, crop_only=True)
    assert result["frames"] == 93 and (tmp_path / "out.mp4").stat().st_size > 0
    (tmp_path / "vgnet.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"atvgnet/vgnet weights not found: .*vgnet\.pt"):
        ATVGnetGenerator.load(tmp_path, "cpu")
    (tmp_path / "vgnet.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable weights-only torch file"):
        ATVGnetGenerator.load(tmp_path, "cpu")


def test_generate_errors(files, generator, tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(GenerateError, match="no face found"):
        generate(files["noface"], files["odd_m4a"], out, generator)
    with pytest.raises(GenerateError, match="cannot read audio"):
        generate(files["face"], files["text"], out, generator)
    with pytest.raises(GenerateError, match="cannot read image"):
        generate(tmp_path / "nope.jpg", files["odd_m4a"], out, generator)
    assert not out.exists()
