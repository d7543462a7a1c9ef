"""ATVGnet's released weights rendering by the authors' protocol (issue 15; lelechen63/ATVGnet code/demo.py): their
MFCC windows, their boost and PCA in x5 units, VG-net one ConvGRU step per frame, and the round trip from the
store's crop into theirs and back, on a real GRID clip of the store."""
import numpy as np
import pytest
import python_speech_features as psf
import torch
from skimage.transform import SimilarityTransform

from models.atvgnet import ATNet, VGNet, VGNetConfig
from models.atvgnet.authors_generator import BOOST, AuthorsATVGnetGenerator, authors_mfcc_windows
from models.atvgnet.authors_protocol import load_basics
from storage.crops import FACE
from storage.dataset import ClipReader, ok_clips


@pytest.fixture(scope="module")
def clip(grid_store):
    """(still face crop uint8 (128, 128, 3), its landmarks (68, 2) in crop pixels, the clip's audio int16)."""
    reader = ClipReader(grid_store)
    row = ok_clips(grid_store, "train").iloc[0]
    return reader.crops(row, "face")[0], reader.landmarks(row)[0], reader.audio(row)


def generator(atnet_bias=None, attention_bias=None) -> AuthorsATVGnetGenerator:
    torch.manual_seed(0)
    atnet, vgnet = ATNet(), VGNet(VGNetConfig.preset("small"))
    with torch.no_grad():
        if atnet_bias is not None:  # AT-net answers a constant: the decoder's bias
            atnet.decoder.weight.zero_()
            atnet.decoder.bias.copy_(torch.as_tensor(atnet_bias))
        if attention_bias is not None:  # VG-net's attention channel saturated: the output is the input image
            vgnet.head.weight[3:].zero_()
            vgnet.head.bias[3:] = attention_bias
    return AuthorsATVGnetGenerator(atnet.eval(), vgnet.eval(), load_basics())


def test_mfcc_windows_are_their_demos_rows_of_the_padded_speech(clip):
    audio = clip[2]
    speech = np.concatenate([np.zeros(1920), audio / 32768.0, np.zeros(1920)])  # demo.py lines 215-217
    mfcc = psf.mfcc(speech, 16000, winstep=0.01)
    n = int(mfcc.shape[0] / 4) - 6  # the frames their loop makes (lines 228-232)
    windows = authors_mfcc_windows(audio, n)
    for k in (0, 1, n // 2, n - 1):
        np.testing.assert_allclose(windows[k], mfcc[4 * k : 4 * k + 28, 1:], rtol=1e-4, atol=1e-4)
    longer = authors_mfcc_windows(audio, n + 10)  # more frames than the speech: silence after it
    assert longer.shape == (n + 10, 28, 12) and np.isfinite(longer).all()


def test_boost_and_pca_in_x5_units_then_placed_on_the_still(clip):
    bias = np.array([0.1, -0.2, 0.3, 0.05, -0.1, 0.2], np.float32)
    g = generator(atnet_bias=bias)
    basics = g.basics
    expected = (bias * BOOST) @ basics.pca.T + basics.mean  # demo.py lines 239-241: omega on 1-5, no / 5
    np.testing.assert_allclose(g.authors_landmarks(clip[2], 3), np.repeat(expected[None], 3, 0), rtol=1e-4,
                               atol=1e-4)

    g = generator(atnet_bias=g.example_coeffs / BOOST)  # boosted, the example itself: the still's own shape
    example = g.example_x5.reshape(68, 2) / 5.0
    tform = SimilarityTransform(scale=310.0, rotation=0.08, translation=(64.0, 70.0))
    still_landmarks = tform(example).astype(np.float32)
    predicted = g.predict_landmarks(still_landmarks, clip[2], 4)
    assert predicted.shape == (4, 68, 2)
    np.testing.assert_allclose(predicted, np.repeat(still_landmarks[None], 4, 0), atol=0.01)


def test_vgnet_renders_each_frame_from_a_zero_state_as_their_conv2dgru_does(clip):
    g = generator()
    with torch.no_grad():  # weights far from the init, so every part of VG-net shapes the frame
        for p in g.vgnet.parameters():
            p.normal_(0, 0.2)
    face = clip[0]
    landmarks = g.example_x5 + np.random.default_rng(0).normal(0, 0.05, (3, 136)).astype(np.float32)
    three = g.render(face, landmarks)
    alone = g.render(face, landmarks[2:])
    assert three.shape == (3, 128, 128, 3) and np.array_equal(three[2], alone[0])
    # talkface's own inference recurs over time: the third frame then depends on the first two
    image = torch.from_numpy(face).permute(2, 0, 1).float().div(127.5).sub(1)[None]
    example = torch.from_numpy(g.example_x5)[None]
    with torch.no_grad():
        over_time, _ = g.vgnet(image, torch.from_numpy(landmarks)[None], example)  # (1, 3, 3, H, W)
        one_step, _ = g.vgnet(image, torch.from_numpy(landmarks[2:])[None], example)
    assert (over_time[0, 2] - one_step[0, 0]).abs().max() > 1e-4


def test_the_store_crop_goes_into_theirs_and_back(clip):
    still, landmarks, audio = clip
    g = generator(attention_bias=-40.0)  # frames = the aligned still: what comes back is the round trip
    frames = g(still, landmarks, audio, 5)
    assert frames.shape == (5, *FACE.size, 3) and frames.dtype == np.uint8
    error = np.abs(frames.astype(float) - still.astype(float)).mean(axis=(1, 2, 3))
    assert (error < 2).all(), error  # two bilinear warps and a uint8 truncation; measured 0.62 levels
    # (their crop is the store's zoomed 1.28x; a 6-px shift of the still differs by 16.6 levels)
    assert np.abs(frames[0].astype(float) - np.roll(still, 6, axis=0).astype(float)).mean() > 10
