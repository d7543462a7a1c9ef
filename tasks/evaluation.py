"""Score any trained system's `Generator` on a store split with the papers' metrics (pure: no Prefect, no MLflow).

Per ok clip of the split (the protocol of Chen et al. CVPR 2019, Sec. 4, on this project's store): the clip's first
frame of the generator's crop (`Generator.crop`: the store's `face`, `mouth` or `face_sda`, `storage.crops`) is the
still image, with its landmarks in that crop's pixels; the clip's 16 kHz audio is the speech, and the generator
renders the clip's length in frames (ATVGnet: AT-net turns the audio's MFCC into landmarks, boost ω as the public
demo, VG-net renders 128×128 frames; the lip GAN: 64×64 mouths from the still mouth and the log-mel); the ground
truth is the clip's own frames of the same crop.

Face views: dlib needs a whole face, so the landmark, identity, blink and sync metrics read face crops. For a
`face` generator these are its frames. For any other crop, the generated frames and the real ones are each pasted
into the clip's first 128×128 face frame (the still face) through the inverse of the face -> crop transform with a
feathered mask (`storage.paste.paste_back`, what `generate` shows a user), so dlib sees the same face around both
and LMD measures the generated crop alone. (Chen et al. 2018 pasted both into one fixed background face; here it
is each clip's own first frame.) Then, with `tasks.metrics`:
  psnr, ssim              on the generator's crop (64×64 mouths for the lip GAN): default float arithmetic on uint8
                          frames, range 255
  psnr_paper, ssim_paper  the published scripts' uint8 arithmetic and resizing (`tasks.metrics.image`), same crop
  lmd, lmd_sum            dlib 68-point landmarks tracked on the generated and real face views, mouth points 48–67,
                          each set mean-centred; mean over points (the papers' text) / summed (their code); pixels of
                          the 128-px face crop, for every system
  cpbd, cpbd_real         sharpness of the generated / real crops (Narvekar & Karam 2011, as the cpbd package
                          computes it: `tasks.metrics.cpbd`), mean over frames
  acd                     dlib face-descriptor distance of each generated face view to the still (mean)
  blinks_per_s, blink_duration_s   from the generated face views' eye aspect ratio (pooled over the split's clips)
                          by the threshold detector; blinks_per_s_peaks, blink_duration_s_peaks by the authors'
                          peak detector (Vougioukas et al. 2019, `tasks.metrics.peak_blinks`); each with _real, the
                          same on the real ones
  av_offset, av_confidence  SyncNet protocol on mouth crops cut from the generated face views (only with a sync
                          model)
  wer, wer_snapped        word error rate (corpus-level, jiwer) of a lip reader's transcripts of the generated
                          face views against the clip's words (the manifest's `text`), greedy CTC decoding / each
                          word snapped to its GRID slot (`models.lipreader`); wer_real, wer_snapped_real the same
                          reader on the real face views, so the gap is what the generator loses (only with a
                          reader, on a store whose clips have words; per clip: the transcripts and their WER)
  lmd_a2l                 the landmarks a two-stage system renders from (Zheng et al.'s A2L, ATVGnet's AT-net with
                          its boost ω: `Generator.predict_landmarks`) against the store's dlib landmarks of the real
                          frames, mouth points (those the model predicts, `landmark_mask`), pixels of the 128-px
                          face crop: the audio-to-landmark stage alone (Zheng et al. 2020's "A2L LMD")
  <metric>_frontal, <metric>_profile   lmd, lmd_a2l, psnr and ssim over the clips whose largest |head yaw| (the
                          manifest's `head_yaw_deg`) is under 10° / over 30° (Zheng et al. 2020, Tab. V(b)), with
                          n_clips_frontal and n_clips_profile
  fps                     generated frames per second (the generator from audio to frames, without the paste and
                          the metrics), over the split
`metrics` (the system's, `models.system.System.metrics`) may leave out acd and the blink statistics (a mouth
generator's face views keep the still's eyes). Frames where dlib finds no face are left out of the landmark metrics
and counted (`lmd_missing`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from storage import store
from storage.dataset import ClipReader, ok_clips
from storage.paste import paste_back
from tasks import align
from tasks.face import FaceTracker
from tasks.metrics import acd, blink_statistics, cpbd, eye_aspect_ratio, lmd, psnr, psnr_paper_uint8, ssim, ssim_paper
from tasks.metrics.wer import wer

MOUTH_POINTS = range(48, 68)
POSE_GROUPS = {"frontal": lambda yaw: yaw < 10.0, "profile": lambda yaw: yaw > 30.0}  # |yaw| in degrees, Tab. V(b)
POSE_METRICS = ("lmd", "lmd_a2l", "psnr", "ssim")

# (faces uint8 (N, 128, 128, 3), mouths uint8 (N, 64, 64, 3), mfcc float32 (A, 13)) -> (AV offset, confidence)
SyncFn = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[float, float]]
# faces uint8 (N, 128, 128, 3) -> (greedy transcript, grammar-snapped transcript), lower-case words
ReadFn = Callable[[np.ndarray], tuple[str, str]]
TRANSCRIPTS = ("transcript", "transcript_snapped", "transcript_real", "transcript_snapped_real")


def tracked_landmarks(frames: np.ndarray, tracker: FaceTracker) -> np.ndarray:
    """dlib landmarks float32 (N, 68, 2) in pixels of uint8 frames (N, H, W, 3); NaN where no face is found."""
    return tracker.track(frames).landmarks


def filled(points: np.ndarray) -> np.ndarray | None:
    """Landmarks (N, 68, 2) with NaN frames interpolated in time (`align.interpolate_missing`); None when no frame
    has a face."""
    return align.interpolate_missing(points) if (~np.isnan(points[:, 0, 0])).any() else None


def mouth_crops(frames: np.ndarray, points: np.ndarray, size: int = 64) -> np.ndarray:
    """uint8 (N, size, size, 3) mouth crops of aligned face crops (N, H, W, 3) as the build cuts them
    (`align.mouth_transforms`), from landmarks float32 (N, 68, 2) without gaps."""
    identity_transform = np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float32), (len(frames), 1, 1))
    return align.warp(frames, align.mouth_transforms(identity_transform, points, size), size)


def crop_landmarks(reader: ClipReader, row, crop, window: int) -> np.ndarray:
    """float32 (n_frames, 68, 2): the clip's landmarks in pixels of the store crop `crop` (`storage.crops.Crop`);
    the stored ones for `face`, else the source-frame ones through that crop's alignment as the build made it
    (`align.crop_transforms` with the build's smoothing `window`)."""
    if crop.field == "face":
        return reader.landmarks(row)
    src = reader.landmarks_src(row)
    return align.apply(align.crop_transforms(crop.field, crop.size, src, window), src)


def face_views(generated: np.ndarray, real: np.ndarray, still_face: np.ndarray, face_to_crop: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """(generated, real) crops uint8 (N, h, w, 3) each pasted into the still face crop uint8 (H, W, 3) through the
    inverse of `face_to_crop` (float (2, 3), face-crop pixels -> crop pixels): two uint8 (N, H, W, 3)."""
    return paste_back(still_face, generated, face_to_crop), paste_back(still_face, real, face_to_crop)


def score_clip(generated: np.ndarray, real: np.ndarray, still_landmarks: np.ndarray, mfcc: np.ndarray,
               tracker: FaceTracker, sync: SyncFn | None = None, views: tuple[np.ndarray, np.ndarray] | None = None,
               metrics: frozenset[str] | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Metrics of one generated clip uint8 (N, h, w, 3) against its real frames (same shape), both of the
    generator's crop. views: (generated, real) face views uint8 (N, H, W, 3) (`face_views`), None when the crop is
    the face itself; still_landmarks float32 (68, 2) in face-view pixels. metrics: the system's metric names
    (None: all). Returns (row of per-clip metrics, {"ear", "ear_real"}: the eye aspect ratio series (N,) for the
    pooled blink statistics, None where no frame has a face or blinks are not scored; AV sync is NaN then too)."""
    gen_view, real_view = views if views is not None else (generated, real)
    psnr_, ssim_ = psnr(generated, real), ssim(generated, real)
    gen_points, real_points = tracked_landmarks(gen_view, tracker), tracked_landmarks(real_view, tracker)
    found = ~(np.isnan(gen_points).any((1, 2)) | np.isnan(real_points).any((1, 2)))
    row = {
        "psnr": psnr_.mean, "ssim": ssim_.mean,
        "psnr_paper": psnr_paper_uint8(generated, real).mean, "ssim_paper": ssim_paper(generated, real).mean,
        "lmd": lmd(gen_points[found], real_points[found]) if found.any() else float("nan"),
        "lmd_sum": lmd(gen_points[found], real_points[found], reduce="sum") if found.any() else float("nan"),
        "lmd_missing": float((~found).sum()),
        "cpbd": float(np.mean([cpbd(f) for f in generated])),
        "cpbd_real": float(np.mean([cpbd(f) for f in real])),
    }
    if metrics is None or "acd" in metrics:
        row["acd"] = acd(real_view[0], gen_view, still_landmarks=still_landmarks).mean
    gen_filled, real_filled = filled(gen_points), filled(real_points)
    if sync is not None:
        row["av_offset"], row["av_confidence"] = (
            sync(gen_view, mouth_crops(gen_view, gen_filled), mfcc) if gen_filled is not None
            else (float("nan"),) * 2)
    blinks = metrics is None or "blinks_per_s" in metrics
    ears = {"ear": None if gen_filled is None or not blinks else eye_aspect_ratio(gen_filled),
            "ear_real": None if real_filled is None or not blinks else eye_aspect_ratio(real_filled)}
    return row, ears


def landmark_stage_lmd(generator, still_landmarks: np.ndarray, audio: np.ndarray, real_points: np.ndarray) -> float:
    """`lmd_a2l` of one clip: the generator's `predict_landmarks(still_landmarks, audio, n)` float (n, 68, 2) against
    the real frames' landmarks `real_points` (n, 68, 2), both in face-crop pixels, over the mouth points its
    `landmark_mask` (bool (68,); default all) keeps."""
    predicted = generator.predict_landmarks(still_landmarks, audio, len(real_points))
    keep = np.asarray(getattr(generator, "landmark_mask", np.ones(68, bool)))
    return lmd(predicted, real_points, [i for i in MOUTH_POINTS if keep[i]])


def pose_aggregates(per_clip: pd.DataFrame, yaw_deg: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Frame-weighted means of `POSE_METRICS` over the clips of each `POSE_GROUPS` group (largest |yaw| per clip,
    NaN: in no group), as "<metric>_<group>", and "n_clips_<group>"; a group without clips gives only its count 0."""
    out = {}
    yaw = np.abs(np.asarray(yaw_deg, np.float64))
    for group, member in POSE_GROUPS.items():
        chosen = np.isfinite(yaw) & member(np.nan_to_num(yaw, nan=-1.0))
        out[f"n_clips_{group}"] = float(chosen.sum())
        for metric in (m for m in POSE_METRICS if m in per_clip and chosen.any()):
            values = per_clip[metric].to_numpy(np.float64)[chosen]
            ok = ~np.isnan(values)
            out[f"{metric}_{group}"] = (float(np.average(values[ok], weights=weights[chosen][ok])) if ok.any()
                                        else float("nan"))
    return out


def read_clip(lip_reader: ReadFn, views: tuple[np.ndarray, np.ndarray], reference: str) -> dict:
    """The lip reader's transcripts (`TRANSCRIPTS`) of the (generated, real) face views uint8 (N, 128, 128, 3) and
    each one's WER against `reference` (the clip's words): the per-clip columns of `evaluate`."""
    (greedy, snapped), (greedy_real, snapped_real) = lip_reader(views[0]), lip_reader(views[1])
    out = dict(zip(TRANSCRIPTS, (greedy, snapped, greedy_real, snapped_real)))
    for name, text in list(out.items()):
        out[name.replace("transcript", "wer")] = wer([reference], [text])
    return out


def corpus_wer(per_clip: pd.DataFrame, references: list[str]) -> dict[str, float]:
    """wer, wer_snapped, wer_real, wer_snapped_real over all the clips' words at once (jiwer's corpus WER: errors
    over reference words, not a mean of per-clip rates)."""
    return {name.replace("transcript", "wer"): wer(references, per_clip[name].tolist()) for name in TRANSCRIPTS}


def pooled_blinks(ears: list[np.ndarray | None], detector: str = "threshold") -> tuple[float, float]:
    """(blinks per second, median blink duration s) over the clips' EAR series that exist, by `detector`
    ("threshold" or the authors' "peaks", `tasks.metrics.blink_statistics`); NaN when none exists."""
    present = [e for e in ears if e is not None]
    if not present:
        return float("nan"), float("nan")
    stats = blink_statistics(present, detector=detector)
    return stats.blinks_per_second, stats.median_duration_s


def evaluate(generator, store_dir: Path, split: str = "test", sync: SyncFn | None = None,
             max_clips: int | None = None,
             on_clip: Callable[[str, np.ndarray, np.ndarray, np.ndarray], None] | None = None,
             metrics: frozenset[str] | None = None, lip_reader: ReadFn | None = None,
             ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Score a loaded `models.system.Generator` on every ok clip of `store_dir`'s `split` (the first `max_clips`,
    sorted by clip_id, when given); the store's frames of the generator's crop are the ground truth. on_clip(clip_id,
    generated, real, audio int16 16 kHz) is called per clip with the face views (e.g. to write sample videos).
    metrics: the system's metric names (`score_clip`; None: all). lip_reader: a lip reader (`ReadFn`) for WER, scored
    when given, the system reports "wer" (or `metrics` is None) and the clips have words; clips without words are
    left out of it.

    Returns (per-clip DataFrame: clip_id, speaker, n_frames and the module docstring's metric columns, aggregate
    dict: frame-weighted means of the per-clip metrics, the pooled blink statistics when scored, fps, n_clips,
    n_frames). Raises ValueError when the split has no ok clip, or the store was built without the generator's crop
    or at another size (saying how to build one that has it).
    """
    crop = generator.crop
    clips = ok_clips(store_dir, split).sort_values("clip_id")
    if max_clips is not None:
        clips = clips.head(max_clips)
    reader, tracker = ClipReader(store_dir), FaceTracker()
    window = int(store.read_card(store_dir)["parameters"].get("smooth_window", 7))
    first = clips.iloc[0]
    try:
        held = reader.group(first.shard)[crop.field].shape[1:3]
    except KeyError:
        held = None
    if held != tuple(crop.size):
        raise ValueError(f"{store_dir} has {'no ' + crop.field if held is None else f'{crop.field} at {held}'}; the "
                         f"generator renders {crop.field} {tuple(crop.size)}: build a store with it:\n  "
                         f"{store.build_command(store_dir, add_crops={crop.field: tuple(crop.size)})}")
    # one untimed pass first: the timed fps leaves out one-off start-up costs
    generator(reader.crops(first, crop.field)[0], crop_landmarks(reader, first, crop, window)[0], reader.audio(first),
              16)
    read = lip_reader is not None and (metrics is None or "wer" in metrics)
    landmark_stage = (hasattr(generator, "predict_landmarks") and crop.field == "face"
                      and (metrics is None or "lmd_a2l" in metrics))
    rows, ears, ears_real, seconds = [], [], [], 0.0
    for row in clips.itertuples(index=False):
        real, real_points = reader.crops(row, crop.field), crop_landmarks(reader, row, crop, window)
        mfcc, audio = reader.mfcc(row), reader.audio(row)
        start = time.perf_counter()
        generated = generator(real[0], real_points[0], audio, len(real))
        seconds += time.perf_counter() - start
        views, still_landmarks = None, real_points[0]
        if crop.field != "face":
            faces, src = reader.crops(row, "face"), reader.landmarks_src(row)
            face_to_crop = align.relative(align.crop_transforms("face", faces.shape[1:3], src, window)[:1],
                                          align.crop_transforms(crop.field, crop.size, src, window)[:1])[0]
            views, still_landmarks = face_views(generated, real, faces[0], face_to_crop), reader.landmarks(row)[0]
        scores, ear = score_clip(generated, real, still_landmarks, mfcc, tracker, sync, views, metrics)
        if landmark_stage:
            scores["lmd_a2l"] = landmark_stage_lmd(generator, real_points[0], audio, real_points)
        if read and isinstance(row.text, str) and row.text.strip():
            scores.update(read_clip(lip_reader, views or (generated, real), row.text))
        rows.append({"clip_id": row.clip_id, "speaker": row.speaker, "n_frames": int(row.n_frames), **scores})
        ears.append(ear["ear"])
        ears_real.append(ear["ear_real"])
        if on_clip is not None:
            on_clip(row.clip_id, *(views or (generated, real)), audio)
    per_clip = pd.DataFrame(rows)
    weights = per_clip["n_frames"].to_numpy(np.float64)
    metric_cols = [c for c in per_clip.columns if c not in ("clip_id", "speaker", "n_frames", *TRANSCRIPTS)
                   and not c.startswith("wer")]  # WER is pooled over the corpus below, not averaged
    aggregate = {}
    for c in metric_cols:
        values = per_clip[c].to_numpy(np.float64)
        ok = ~np.isnan(values)
        aggregate[c] = float(np.average(values[ok], weights=weights[ok])) if ok.any() else float("nan")
    yaw = clips["head_yaw_deg"].to_numpy(np.float64) if "head_yaw_deg" in clips else np.full(len(clips), np.nan)
    aggregate.update(pose_aggregates(per_clip, yaw, weights))
    if "transcript" in per_clip:
        words = per_clip.dropna(subset=["transcript"])
        aggregate.update(corpus_wer(words, clips.set_index("clip_id").loc[words["clip_id"], "text"].tolist()))
    if metrics is None or "blinks_per_s" in metrics:
        for detector, suffix in (("threshold", ""), ("peaks", "_peaks")):
            for series, real in ((ears, ""), (ears_real, "_real")):
                (aggregate[f"blinks_per_s{suffix}{real}"],
                 aggregate[f"blink_duration_s{suffix}{real}"]) = pooled_blinks(series, detector)
    aggregate.update(
        fps=float(weights.sum() / seconds) if seconds else float("nan"),
        n_clips=float(len(per_clip)), n_frames=float(weights.sum()),
    )
    return per_clip, aggregate
