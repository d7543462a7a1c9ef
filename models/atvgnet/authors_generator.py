"""ATVGnet's released weights rendering a store's face, by the authors' protocol (lelechen63/ATVGnet `code/demo.py`)
instead of talkface's: what `talkface generate / evaluate --model models:/atvgnet@authors` run
(`AuthorsATVGnetGenerator`, the `models.system` Generator; imported by `talkface import-weights`, `authors_keys`).

The caller gives what every generator gets: the store's 128-px `face` crop of the still frame, its dlib landmarks in
crop pixels and 16 kHz speech. Then, as their demo does (line numbers of `demo.py`):
1. The still is re-aligned to their template (`authors_protocol.alignment`, lines 125-147): a similarity fitted on
   points 27-44 maps the store's crop into theirs (bilinear; where their crop reaches past the store's, the store
   crop's edge pixels are repeated, since their ROI is cut from the whole photo).
2. Their example landmarks (`normLmarks` of one image, a constant: `authors_protocol.example_landmarks`) x5, minus
   `mean_lrw1`, times `U_lrw1[:, :6]` -> AT-net's 6 coefficients (lines 210-212).
3. MFCC (`storage.audio.mfcc`, the python_speech_features definition they call) of the speech with 1920 zero samples
   (3 video frames) before it and at least as many after (lines 213-217); frame k hears rows [4k, 4k + 28) of it,
   columns 1-12 (lines 224-235). AT-net runs once over the whole utterance.
4. Their boost: components 1-5 x (2.2, 2.4, 2.6, 2.8, 3.0), then the PCA reconstruction + `mean_lrw1`, left in x5
   units, which VG-net was trained on; VG-net's example landmarks are the reconstruction of step 2's coefficients
   (lines 236-246).
5. VG-net renders every frame from its own landmarks with a zero ConvGRU state: their `Conv2dGRU`, built without
   `batch_first`, takes the (1, T) batch as T sequences of one step, so at inference each frame is one GRU step
   (talkface's VG-net recurs over time; here frames go through it as a batch of one-frame sequences, which computes
   what theirs does).
6. Frames in [-1, 1] -> uint8 by (x + 1) x 127.5. (Their demo writes each frame with `scipy.misc.imsave`, which
   stretches every frame to its own min and max; talkface uses the fixed map so frames are comparable.)
7. Each frame is warped back into the store's crop (`storage.paste.paste_back`, feathered), the still's pixels
   outside their crop kept, so it is scored against the store's real frames like every other system.
Pure torch, numpy and OpenCV (no Prefect, MLflow or dlib).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from skimage.transform import SimilarityTransform

from models.atvgnet import authors_protocol as protocol
from models.atvgnet.at_net import ATNet, ATNetConfig
from models.atvgnet.data import mfcc_windows
from models.atvgnet.vg_net import VGNet, VGNetConfig
from models.system import eval_mode
from models.weights import load_module, read_weights
from storage import audio as audio_features
from storage.crops import FACE
from storage.paste import paste_back

PROTOCOL = "authors"
BOOST = np.array([1.0, 2.2, 2.4, 2.6, 2.8, 3.0])  # demo.py line 239: 2 * (1.1 ... 1.5) on components 1-5
PAD = 1920  # samples of silence before the speech (demo.py lines 215-216): 12 MFCC rows, 3 video frames
FRAMES_BEFORE = PAD // 640


def basics_to_extra(basics: protocol.Basics) -> dict:
    """The constants a model directory carries (`extra["basics"]` of its atnet.pt), as float64 tensors."""
    return {k: torch.from_numpy(np.asarray(getattr(basics, k), np.float64)) for k in
            ("template_open", "template_closed", "pca", "mean", "example")}


def basics_from_extra(extra: dict) -> protocol.Basics:
    """`basics_to_extra`'s inverse. Raises KeyError naming a missing constant."""
    return protocol.Basics(**{k: extra[k].double().numpy() for k in
                              ("template_open", "template_closed", "pca", "mean", "example")})


def authors_mfcc_windows(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """float32 (n_frames, 28, 12): frame k's MFCC window as their demo cuts it (lines 213-235), rows [4k, 4k + 28),
    columns 1-12, of the MFCC (`storage.audio.mfcc`) of audio int16 (S,) at 16 kHz with 1920 zero samples before
    it and enough after it that every window lies inside (their 1920, and more when n_frames outlasts the speech).
    Raises ValueError for n_frames < 1."""
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    audio = np.asarray(audio)
    after = PAD + 640 + max(0, 640 * n_frames - len(audio))
    padded = np.concatenate([np.zeros(PAD, audio.dtype), audio, np.zeros(after, audio.dtype)])
    return mfcc_windows(audio_features.mfcc(padded), np.arange(n_frames) + FRAMES_BEFORE)


class AuthorsATVGnetGenerator:
    """The authors' AT-net and VG-net behind the store's interface (module docstring): still uint8 (128, 128, 3)
    `face` crop + its landmarks float32 (68, 2) in crop pixels + audio int16 (S,) at 16 kHz -> uint8
    (n_frames, 128, 128, 3) RGB frames of the store's crop.

    atnet, vgnet: the released networks (`authors_keys`); basics: their constants; batch: frames per VG-net pass.
    """

    crop = FACE

    def __init__(self, atnet: ATNet, vgnet: VGNet, basics: protocol.Basics, batch: int = 16):
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.atnet, self.vgnet, self.basics, self.batch = atnet, vgnet, basics, batch
        coeffs = (basics.example * protocol.SCALE - basics.mean) @ basics.pca  # (6,), demo lines 210-212
        self.example_coeffs = coeffs.astype(np.float32)
        self.example_x5 = (coeffs @ basics.pca.T + basics.mean).astype(np.float32)  # (136,), lines 237-238

    @classmethod
    def load(cls, model_dir: Path, device: str | torch.device = "cpu") -> "AuthorsATVGnetGenerator":
        """From a model directory `talkface import-weights --system atvgnet` wrote (atnet.pt, vgnet.pt with
        `extra["protocol"] == "authors"`), on `device`. Raises as `models.weights.read_weights`, ValueError for a
        directory trained by talkface."""
        at = read_weights(Path(model_dir) / "atnet.pt", "atvgnet", "atnet")
        vg = read_weights(Path(model_dir) / "vgnet.pt", "atvgnet", "vgnet")
        if at["extra"].get("protocol") != PROTOCOL:
            raise ValueError(f"{model_dir} holds ATVGnet weights trained by talkface, not the authors' release")
        atnet = ATNet(ATNetConfig.from_dict(at["config"]["model"]))
        load_module(atnet, at["modules"]["atnet"], Path(model_dir) / "atnet.pt", "AT-net")
        vgnet = VGNet(VGNetConfig.from_dict(vg["config"]["generator"]))
        load_module(vgnet, vg["modules"]["generator"], Path(model_dir) / "vgnet.pt", "VG-net")
        return cls(atnet.to(device).eval(), vgnet.to(device).eval(), basics_from_extra(at["extra"]["basics"]))

    def authors_landmarks(self, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """float32 (n_frames, 136): the boosted AT-net landmarks in their x5 space (x0, y0, x1, ...), steps 2-4."""
        windows = authors_mfcc_windows(audio, n_frames)
        dev = next(self.atnet.parameters()).device
        with eval_mode(self.atnet), torch.inference_mode():
            coeffs = self.atnet(torch.from_numpy(self.example_coeffs)[None].to(dev),
                                torch.from_numpy(windows)[None].to(dev))[0].double().cpu().numpy()  # (n, 6)
        return ((coeffs * BOOST) @ self.basics.pca.T + self.basics.mean).astype(np.float32)

    def predict_landmarks(self, still_landmarks: np.ndarray, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """AT-net's landmarks float32 (n_frames, 68, 2) in the store crop's pixels: their normalised shapes placed
        on the still by the similarity that takes their example shape's points 27-44 onto `still_landmarks`'."""
        shapes = self.authors_landmarks(audio, n_frames).reshape(n_frames, 68, 2) / protocol.SCALE
        example = self.example_x5.reshape(68, 2) / protocol.SCALE
        to_crop = SimilarityTransform.from_estimate(example[protocol.ALIGN],
                                                    np.asarray(still_landmarks, np.float64)[protocol.ALIGN])
        return to_crop(shapes.reshape(-1, 2)).reshape(n_frames, 68, 2).astype(np.float32)

    def __call__(self, still: np.ndarray, still_landmarks: np.ndarray, audio: np.ndarray,
                 n_frames: int) -> np.ndarray:
        still = np.asarray(still)
        if still.shape != (*self.crop.size, 3) or still.dtype != np.uint8:
            raise ValueError(f"still must be uint8 (128, 128, 3), got {still.dtype} {still.shape}")
        to_theirs = protocol.alignment(still_landmarks, self.basics)  # (3, 3) store crop -> their crop pixels
        theirs = protocol.warp(still, to_theirs)
        frames = self.render(theirs, self.authors_landmarks(audio, n_frames))
        return paste_back(still, frames, to_theirs[:2], feather=4)

    def render(self, face: np.ndarray, landmarks_x5: np.ndarray) -> np.ndarray:
        """VG-net frames uint8 (n, 128, 128, 3) in their crop from their aligned face uint8 (128, 128, 3) and
        landmarks float (n, 136) in x5 units, each frame one ConvGRU step from a zero state (step 5)."""
        dev = next(self.vgnet.parameters()).device
        image = torch.from_numpy(face).to(dev).permute(2, 0, 1).float().div(127.5).sub(1.0)[None]  # (1, 3, H, W)
        example = torch.from_numpy(self.example_x5).to(dev)[None]  # (1, 136)
        out = []
        with eval_mode(self.vgnet), torch.inference_mode():
            for chunk in torch.from_numpy(np.asarray(landmarks_x5, np.float32)).split(self.batch):
                b = len(chunk)
                frames, _ = self.vgnet(image.expand(b, -1, -1, -1), chunk.to(dev)[:, None], example.expand(b, -1))
                out.append(frames[:, 0].float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu())
        return torch.cat(out).permute(0, 2, 3, 1).numpy()  # (n, H, W, 3)
