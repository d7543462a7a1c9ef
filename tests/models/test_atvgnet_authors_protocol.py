"""The authors' ATVGnet preprocessing (issue 15; lelechen63/ATVGnet code/demo.py): their alignment of a real GRID
frame puts the face where their template says, and the example landmarks of one image are their constant."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.atvgnet.authors_protocol import ALIGN, BASICS, align_image, example_landmarks, load_basics
from tasks.face import FaceTracker
from tasks.media import decode

CLIP = Path(__file__).resolve().parents[2] / "samples" / "grid" / "s1" / "bbaf2n.mpg"


@pytest.fixture(scope="module")
def tracker():
    return FaceTracker()


def landmarks_of(image, tracker):
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    box = tracker.detect(gray)
    assert box is not None
    return tracker.predict(gray, box)


def test_alignment_of_a_real_grid_frame_lands_the_landmarks_on_their_template(tracker):
    frame = decode(CLIP).frames[10]  # RGB uint8 (288, 360, 3)
    basics = load_basics()
    crop, matrix = align_image(frame, landmarks_of(frame, tracker), basics)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    # dlib again on the aligned crop, as their demo does: points 27-44 sit on the template (minus the 1-px crop)
    again = landmarks_of(crop, tracker)
    error = np.linalg.norm(again[ALIGN] - (basics.template_closed[ALIGN] - 1), axis=1)
    assert error.mean() < 2.5, error  # px of the 128-px crop; measured 1.32 (frame 10)
    assert np.abs(crop.astype(float).mean() - 100) < 60  # a face, not a black border
    assert matrix.shape == (3, 3)


def test_example_landmarks_are_the_mean_shape_minus_their_mouth_offset():
    basics = load_basics()
    msk = np.load(BASICS / "mean_shape_norm.npy")[0]
    diff = basics.example - msk
    assert np.abs(diff[96:]).max() > 1e-4  # the mouth moves
    assert basics.example.shape == (136,) and basics.pca.shape == (136, 6)
    # their loop for one frame, written out: params = -open_mouth_params whatever the face
    S = np.load(BASICS / "S.npy")
    tmp = msk.copy()
    tmp[96:] += (np.eye(1, 100, 1) * -0.06 @ S)[0, 96:]
    omp = S @ (tmp - msk)
    np.testing.assert_allclose(example_landmarks(msk[None], S), msk - omp @ S)
    # in their x5 PCA space the example is a plausible code: reconstruction error small against its size
    code = 5.0 * basics.example - basics.mean
    recon = code @ basics.pca @ basics.pca.T
    assert np.linalg.norm(recon - code) < 0.5 * np.linalg.norm(code) + 1e-9
