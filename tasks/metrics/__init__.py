"""Evaluation metrics of generated talking faces (DESIGN "Metrics"), each a pure function on frames or landmarks.

- `image`: PSNR and SSIM against the identically cropped ground truth (data range 255, float64; Wang et al. 2004
  for SSIM), plus `psnr_paper_uint8` / `ssim_paper` reproducing the public ATVGnet evaluation script (uint8
  wrap-around squared error on grey 256×256 frames; scikit-image's default SSIM).
- `landmarks`: LMD on the mouth points 48–67, each set mean-centred (Chen et al. ECCV 2018, CVPR 2019): the mean over
  points as the papers describe, or the sum as their public code computes.
- `cpbd`: CPBD sharpness (Narvekar & Karam, IEEE TIP 2011), written here; by default rule for rule as the `cpbd`
  package computes it (the code behind the published numbers; not imported), `variant="talkface_v1"` the earlier
  reading of the paper.
- `identity`: ACD, the distance of dlib's 128-d face descriptors between the still image and each generated frame
  (Tulyakov et al. 2018, Vougioukas et al. 2019; they used OpenFace, so absolute values differ).
- `blinks`: eye aspect ratio (Soukupová & Čech 2016), blinks per second and median blink duration (Vougioukas et al.
  IJCV 2019), by the project's threshold rule (`threshold_blinks`, the default) or the authors' peak detector
  (`peak_blinks`, `blink_statistics(..., detector="peaks")`).
- `wer`: word error rate of lip-read transcripts (jiwer, corpus-level; Vougioukas et al. 2019 with a LipNet reader).
- `speed`: inference frames per second (ATVGnet: 34.5 FPS on a GTX 1080 Ti).

Not here yet: AV offset and confidence (SyncNet protocol), which need an audio-visual sync network.
"""
from tasks.metrics.blinks import (
    DETECTORS as BLINK_DETECTORS, BlinkStatistics, PeakBlink, blink_statistics, detect_blinks, eye_aspect_ratio,
    peak_blink_statistics, peak_blinks, threshold_blinks,
)
from tasks.metrics.cpbd import cpbd
from tasks.metrics.identity import ContentDistance, acd, face_descriptors
from tasks.metrics.image import FrameScores, psnr, psnr_paper_uint8, ssim, ssim_paper
from tasks.metrics.landmarks import MOUTH, lmd, lmd_per_frame
from tasks.metrics.speed import frames_per_second
from tasks.metrics.wer import wer

__all__ = [
    "BLINK_DETECTORS", "BlinkStatistics", "ContentDistance", "FrameScores", "MOUTH", "PeakBlink", "acd",
    "blink_statistics", "cpbd", "detect_blinks", "eye_aspect_ratio", "face_descriptors", "frames_per_second", "lmd",
    "lmd_per_frame", "peak_blink_statistics", "peak_blinks", "psnr", "psnr_paper_uint8", "ssim", "ssim_paper",
    "threshold_blinks", "wer",
]
