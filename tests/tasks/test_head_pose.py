"""Head pose from landmarks: exact on projected model points, and consistent on real GRID frames (a mirrored face
turns the other way, an image rotated in its plane rolls by that angle)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from tasks import head_pose, media
from tasks.face import FaceTracker


def euler_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll)·Ry(yaw)·Rx(pitch), angles in degrees (the module's convention)."""
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def projected_landmarks(yaw: float, pitch: float, roll: float, frame_size=(288, 360)) -> np.ndarray:
    """(1, 68, 2) landmarks whose six pose points are the model seen by the module's camera at that pose."""
    rvec = cv2.Rodrigues(euler_rotation(yaw, pitch, roll))[0]
    pts, _ = cv2.projectPoints(head_pose.MODEL_POINTS, rvec, np.array([10.0, -20.0, 2500.0]),
                               head_pose.camera_matrix(frame_size), None)
    lm = np.full((1, 68, 2), 100.0)
    lm[0, list(head_pose.LANDMARK_IDS)] = pts[:, 0]
    return lm


@pytest.mark.parametrize("pose", [(0, 0, 0), (20, 0, 0), (0, -15, 0), (0, 0, 25), (12, -8, 5), (-30, 10, -12)])
@pytest.mark.parametrize("frame_size", [(288, 360), (256, 256)])
def test_recovers_the_pose_of_projected_model_points(pose, frame_size):
    got = head_pose.head_pose(projected_landmarks(*pose, frame_size=frame_size), frame_size)
    assert got.shape == (1, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], pose, atol=0.05)


def test_clip_pose_ignores_single_frame_spikes_but_not_sustained_turns():
    pose = np.zeros((40, 3), np.float32)
    pose[10] = (40, -35, 30)  # one frame of landmark noise
    assert max(head_pose.clip_pose(pose)) == 0
    pose[20:30, 0] = -15  # ten frames turned
    yaw, pitch, roll = head_pose.clip_pose(pose)
    assert yaw == 15 and pitch == roll == 0


def test_rejects_bad_landmarks():
    with pytest.raises(ValueError, match=r"\(N, 68, 2\)"):
        head_pose.head_pose(np.zeros((3, 5, 2)), (10, 10))
    with pytest.raises(ValueError, match="interpolate missing frames"):
        head_pose.head_pose(np.full((1, 68, 2), np.nan), (10, 10))


@pytest.fixture(scope="module")
def frames(sample_clip) -> np.ndarray:
    return media.decode(sample_clip).frames[::5]  # 15 frames of a real GRID clip


def _pose(frames: np.ndarray) -> np.ndarray:
    track = FaceTracker().track(frames)
    assert track.missing == 0
    return head_pose.head_pose(track.landmarks, frames.shape[1:3])


def test_mirrored_real_face_turns_the_other_way(frames):
    pose, mirrored = _pose(frames), _pose(np.ascontiguousarray(frames[:, :, ::-1]))
    assert np.abs(pose).max() < 25  # a GRID speaker facing the camera
    pose, mirrored = np.median(pose, 0), np.median(mirrored, 0)
    assert abs(pose[0]) > 4 and np.sign(mirrored[0]) == -np.sign(pose[0])  # this speaker is turned a little
    # dlib's landmarks are not exactly mirror-symmetric: a few degrees of difference remain
    np.testing.assert_allclose(mirrored, pose * (-1, 1, -1), atol=4)


def test_real_face_rotated_in_the_image_rolls(frames):
    h, w = frames.shape[1:3]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), -15, 1.0)  # OpenCV: negative angle = clockwise
    rotated = np.stack([cv2.warpAffine(f, turn, (w, h), borderMode=cv2.BORDER_REPLICATE) for f in frames])
    pose, rolled = np.median(_pose(frames), 0), np.median(_pose(rotated), 0)
    assert rolled[2] - pose[2] == pytest.approx(15, abs=2)
    np.testing.assert_allclose(rolled[:2], pose[:2], atol=3)
