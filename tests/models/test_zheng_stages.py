"""Zheng et al. 2020's data and stages (`models.zheng`) on the real sample store: word windows centred on the
`.align` words, the vocabulary of a store, the frozen detector and estimator of A2L (no gradient, the cuDNN
train-mode rule), every Tab. IV / Tab. V switch changing what trains, the MI estimate on real pairs above that on
shuffled pairs after a short CPU run, L2F's lip crop and heatmaps following the landmarks it renders from, and a
generated clip as long as its audio."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from models.zheng import landmarks as zl
from models.zheng.data import T_WORD, FrameDataset, WordWindowDataset, word_windows
from models.zheng.generator import ZhengGenerator
from models.zheng.stages import (GRID_WORDS, A2LLossConfig, A2LStage, L2FLossConfig, L2FStage, MIStage, WordStage,
                                 estimator_inputs, pair_scores, rec_loss, render_inputs)
from storage.dataset import ClipReader, ok_clips
from tasks.training import Devices, build_frozen, frozen_inputs, train_stage
from tests.conftest import train_small


class NoFabric:
    """What a stage's step needs of Fabric on one CPU process."""

    @staticmethod
    def backward(loss):
        loss.backward()

    @staticmethod
    def autocast():
        return torch.autocast("cpu", enabled=False)


def batch_of(dataset, n: int = 4) -> dict:
    return default_collate([dataset[i] for i in range(n)])


@pytest.fixture(scope="module")
def trained(grid_store, tmp_path_factory):
    """A short CPU run of the four stages in order: {stage: TrainResult}."""
    out, results = tmp_path_factory.mktemp("zheng"), {}
    for stage, fields in (("word", dict(steps=20, batch_size=8)), ("mi", dict(steps=60, batch_size=8)),
                          ("a2l", dict(steps=3, batch_size=4)), ("l2f", dict(steps=2, batch_size=2))):
        s = {"word": WordStage, "mi": MIStage, "a2l": A2LStage, "l2f": L2FStage}[stage]()
        cfg = s.Config.preset("small", checkpoint_every=0, **fields)
        inputs = {used.name: results[used.name].last_checkpoint for used, _ in s.uses(cfg).values()}
        results[stage] = train_small(grid_store, out / stage, "zheng", stage, inputs=inputs, checkpoint_every=0,
                                     **fields)
    return results


def test_word_windows_are_centred_on_the_align_words(grid_store):
    data = WordWindowDataset(grid_store, "train")
    clips = ok_clips(grid_store, "train")
    timed = clips[clips["words_timed"]]
    assert len(data) == sum(len(w) for w in timed["words"]) and len(timed) < len(clips)  # untimed clips give none
    assert data.vocab == GRID_WORDS and len(GRID_WORDS) == 51
    for i in (0, 7, len(data) - 1):
        item, window = data[i], data.windows[i]
        row = data.clips.iloc[window.clip]
        [word] = [w for w in row["words"] if GRID_WORDS.index(w["word"]) == int(item["word"])
                  and window.start <= (w["start_frame"] + w["end_frame"]) // 2 < window.start + T_WORD]
        centre = (word["start_frame"] + word["end_frame"]) // 2
        assert abs(centre - (window.start + T_WORD // 2)) <= 1 or window.start in (0, row["n_frames"] - T_WORD)
        assert item["landmarks"].shape == (T_WORD, 136) and item["mfcc"].shape == (T_WORD, 28, 12)
        assert item["reference"].shape == (136,) and item["word"].dtype == torch.int64
        assert item["landmarks"].abs().max() < 1.5  # x / 64 - 1 of 128-px crop pixels
    # a word at a clip's edge gives a window moved inside the clip
    edge = clips.iloc[[0]].copy()
    edge.at[edge.index[0], "words"] = [{"word": "bin", "start_frame": 0, "end_frame": 2}]
    assert word_windows(edge, GRID_WORDS) == [(0, 0, GRID_WORDS.index("bin"))]


def test_landmark_subsets_keep_the_papers_point_counts():
    assert {name: int(zl.subset_mask(name).sum()) for name in zl.SUBSETS} == {
        "all": 68, "no_eyes_nose": 47, "no_jaw": 51, "no_part_lip": 58, "no_upper_lip": 60, "no_right_lip": 60}
    assert not zl.subset_mask("no_jaw")[:17].any() and zl.subset_mask("no_jaw")[17:].all()
    assert zl.flat_mask("no_upper_lip").shape == (136,)
    assert [zl.pose_group(y) for y in (3.0, -12.0, 45.0, float("nan"))] == ["frontal", "between", "profile",
                                                                            "unknown"]
    with pytest.raises(KeyError, match="no_jaw"):
        zl.subset_mask("no_nose")


def test_the_detector_learns_and_reports_its_held_out_accuracy(trained):
    result = trained["word"]
    assert result.losses[-1][1]["loss"] < result.losses[0][1]["loss"]
    assert set(result.validation) == {"test/accuracy", "test/windows"}  # the bundled store has no val split
    assert result.validation["test/windows"] == 6 and 0 <= result.validation["test/accuracy"] <= 1


def test_the_mi_estimate_on_real_pairs_ends_above_shuffled_pairs(trained, grid_store):
    result = trained["mi"]
    first, last = result.losses[0][1], result.losses[-1][1]
    assert last["mi"] > first["mi"] + 0.05 and last["joint"] > last["marginal"]
    # the trained estimator on training windows it scores afresh, with a new shuffle
    stage, ckpt = MIStage(), torch.load(result.last_checkpoint, weights_only=True)
    cfg = stage.Config.from_dict(ckpt["config"])
    estimator = stage.modules(cfg)["estimator"]
    estimator.load_state_dict(ckpt["modules"]["estimator"])
    batch = batch_of(stage.dataset(grid_store, "train", cfg), 16)
    with torch.no_grad():
        joint, marginal = pair_scores(estimator.eval(), *estimator_inputs(estimator, batch["mfcc"],
                                                                          batch["landmarks"]),
                                      torch.Generator().manual_seed(1))
    assert joint.mean() > marginal.mean()


def test_a2l_trains_through_a_frozen_detector_and_estimator(trained, grid_store):
    stage = A2LStage()
    cfg = stage.Config.preset("small", batch_size=4)
    saved = frozen_inputs("zheng", stage, cfg, {"word": trained["word"].last_checkpoint,
                                                 "mi": trained["mi"].last_checkpoint})
    frozen = build_frozen(stage, cfg, saved)
    assert set(frozen) == {"word_detector", "estimator"}
    before = {name: [p.clone() for p in m.parameters()] for name, m in frozen.items()}
    modules = {**stage.modules(cfg), **frozen}
    optimizers = stage.optimizers(cfg, modules)
    out = stage.step(modules, optimizers, batch_of(stage.dataset(grid_store, "train", cfg)), cfg, NoFabric())
    assert {"rec", "wd", "tr", "loss"} == set(out.losses)
    for name, module in frozen.items():
        assert all(p.grad is None and not p.requires_grad for p in module.parameters()), name
        assert all(torch.equal(a, b) for a, b in zip(before[name], module.parameters())), name
    assert all(p.grad is not None for p in modules["a2l"].parameters())
    # the cuDNN rule: the detector's LSTM ran in train mode, with dropout 0 (so train mode computes eval mode)
    detector = frozen["word_detector"]
    assert detector.training and all(getattr(m, "dropout", 0) == 0 for m in detector.modules())
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in detector.modules())
    assert trained["a2l"].step == 3 and np.isfinite(trained["a2l"].losses[-1][1]["loss"])


@pytest.mark.parametrize("precision,dtype", [("bf16-mixed", torch.bfloat16), ("32-true", torch.float32)])
def test_the_frozen_detector_and_estimator_run_in_the_training_precision(trained, grid_store, tmp_path, precision,
                                                                         dtype):
    # A2L's step calls them outside Fabric's module wrapper: the loop puts them under the precision itself
    from models.zheng.mi import MIEstimator
    from models.zheng.word_detector import WordDetector

    seen = []

    def record(module, args, output):
        if isinstance(module, (WordDetector, MIEstimator)):
            seen.append((type(module).__name__, output.dtype))

    stage = A2LStage()
    cfg = stage.Config.preset("small", steps=1, batch_size=2, checkpoint_every=0)
    inputs = {"word": trained["word"].last_checkpoint, "mi": trained["mi"].last_checkpoint}
    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        result = train_stage("zheng", stage, cfg, grid_store, tmp_path, Devices(accelerator="cpu", precision=precision),
                             inputs=inputs)
    finally:
        handle.remove()
    assert sorted(set(seen)) == [("MIEstimator", dtype), ("WordDetector", dtype)], seen
    assert np.isfinite(result.losses[-1][1]["loss"])


def test_the_loop_reports_its_data_wait_and_can_skip_validation(grid_store, tmp_path):
    stage = WordStage()  # its validate scores the held-out words (test_the_detector_learns_...)
    cfg = stage.Config.preset("small", steps=4, batch_size=4, checkpoint_every=0)
    result = train_stage("zheng", stage, cfg, grid_store, tmp_path, Devices(accelerator="cpu"), validate=False)
    assert result.validation == {}
    assert 0 < result.data_wait_seconds < result.step_seconds
    assert result.dataloader_share == result.data_wait_seconds / result.step_seconds
    assert len(result.data_waits) == len(result.step_times) == 4  # per step, for a benchmark's own warm-up
    assert result.data_wait_seconds == pytest.approx(np.mean(result.data_waits[1:]))
    report = result.to_json()
    assert (report["data_wait_seconds"], report["dataloader_share"]) == (result.data_wait_seconds,
                                                                         result.dataloader_share)


def test_each_tab4_switch_changes_what_a2l_trains(trained, grid_store):
    stage = A2LStage()
    inputs = {"word": trained["word"].last_checkpoint, "mi": trained["mi"].last_checkpoint}
    rows = {(wd, tr): stage.Config.preset("small", batch_size=4, loss=A2LLossConfig(
        use_word_detector=wd, use_temporal_residual=tr)) for wd in (False, True) for tr in (False, True)}
    torch.manual_seed(0)
    batch = batch_of(stage.dataset(grid_store, "train", rows[True, True]))
    for (wd, tr), cfg in rows.items():
        assert set(stage.uses(cfg)) == {n for n, on in (("word_detector", wd), ("estimator", tr)) if on}
        torch.manual_seed(0)
        modules = {**stage.modules(cfg), **build_frozen(stage, cfg, frozen_inputs("zheng", stage, cfg, inputs))}
        out = stage.step(modules, stage.optimizers(cfg, modules), batch, cfg, NoFabric())
        assert set(out.losses) == {"rec", "loss"} | ({"wd"} if wd else set()) | ({"tr"} if tr else set())
        expected = out.losses["rec"] + 0.1 * out.losses.get("wd", 0) + 0.1 * out.losses.get("tr", 0)
        assert math.isclose(out.losses["loss"], expected, rel_tol=1e-5)
    dv = stage.Config.preset("small", loss=A2LLossConfig(tr_form="dv"))
    modules = {**stage.modules(dv), **build_frozen(stage, dv, frozen_inputs("zheng", stage, dv, inputs))}
    assert stage.step(modules, stage.optimizers(dv, modules), batch, dv, NoFabric()).losses["tr"] != \
        stage.step(modules, stage.optimizers(dv, modules), batch, rows[True, True], NoFabric()).losses["tr"]


def test_a2l_refuses_frozen_networks_of_another_landmark_subset(trained, grid_store):
    stage = A2LStage()
    cfg = stage.Config.preset("small", batch_size=2, landmark_subset="no_jaw")
    frozen = build_frozen(stage, cfg, frozen_inputs("zheng", stage, cfg, {"word": trained["word"].last_checkpoint,
                                                                         "mi": trained["mi"].last_checkpoint}))
    modules = {**stage.modules(cfg), **frozen}
    with pytest.raises(ValueError, match="trained on landmark subset all, a2l on no_jaw"):
        stage.step(modules, stage.optimizers(cfg, modules), batch_of(stage.dataset(grid_store, "train", cfg), 2), cfg,
                   NoFabric())


def test_a_landmark_subset_hides_its_points_from_a2l_and_l2f(grid_store):
    stage = A2LStage()
    cfg = stage.Config.preset("small", landmark_subset="no_upper_lip",
                              loss=A2LLossConfig(use_word_detector=False, use_temporal_residual=False))
    dropped = ~zl.subset_mask("no_upper_lip")
    batch = batch_of(stage.dataset(grid_store, "train", cfg))
    changed = {k: v.clone() for k, v in batch.items()}
    flat = np.repeat(dropped, 2)
    changed["reference"][:, flat] += 0.3  # the reference's dropped points: the model never sees them
    changed["landmarks"][:, :, flat] += 0.3  # the targets' dropped points: no loss on them

    def step(batch):
        torch.manual_seed(0)
        modules = stage.modules(cfg)
        return stage.step(modules, stage.optimizers(cfg, modules), batch, cfg, NoFabric())

    a, b = step(batch), step(changed)
    assert a.losses["rec"] == b.losses["rec"]
    assert torch.equal(a.outputs["landmarks"][..., ~torch.from_numpy(flat)],
                       b.outputs["landmarks"][..., ~torch.from_numpy(flat)])
    target = batch["landmarks"]
    assert rec_loss(target, target + 0.5 * torch.from_numpy(flat).float(), torch.from_numpy(~dropped)) < 1e-3
    # L2F: the dropped points' heatmaps are empty
    l2f = L2FStage()
    l2f_cfg = l2f.Config.preset("small", landmark_subset="no_upper_lip")
    _, _, heat = render_inputs(batch_of(l2f.dataset(grid_store, "train", l2f_cfg), 2), l2f_cfg)
    assert heat[:, torch.from_numpy(dropped)].abs().max() == 0 and heat[:, torch.from_numpy(~dropped)].amax() > 0.5


def test_l2f_switches_and_its_predicted_landmarks(trained, grid_store):
    stage = L2FStage()
    base = stage.Config.preset("small", batch_size=2)
    assert set(stage.modules(base)) == {"generator", "discriminator"} and stage.uses(base) == {}
    no_gan = stage.Config.preset("small", loss=L2FLossConfig(use_gan=False, use_lip_loss=False))
    assert set(stage.modules(no_gan)) == {"generator"}
    batch = batch_of(stage.dataset(grid_store, "train", base), 2)
    modules = stage.modules(no_gan)
    out = stage.step(modules, stage.optimizers(no_gan, modules), batch, no_gan, NoFabric())
    assert set(out.losses) == {"g/l1", "g/total"}
    modules = stage.modules(base)
    out = stage.step(modules, stage.optimizers(base, modules), batch, base, NoFabric())
    assert {"g/l1", "g/lip", "g/adv", "g/total", "d/real", "d/fake", "d/total"} == set(out.losses)
    # fine-tuning on A2L's predictions: the heatmaps and the lip box follow the frozen A2L's landmarks
    predicted = stage.Config.preset("small", batch_size=2, T=25, landmarks="predicted")
    frozen = build_frozen(stage, predicted, frozen_inputs("zheng", stage, predicted,
                                                          {"a2l": trained["a2l"].last_checkpoint}))
    batch = batch_of(stage.dataset(grid_store, "train", predicted), 2)
    _, points, heat = render_inputs(batch, predicted, frozen["a2l"])
    with torch.no_grad():
        want = (frozen["a2l"](batch["reference"], batch["mfcc"]).unflatten(-1, (68, 2)) + 1) * 64
    torch.testing.assert_close(points, want.flatten(0, 1))
    assert not torch.allclose(points, batch["landmarks"].flatten(0, 1))
    peak = heat[0, 48].flatten().argmax()
    assert abs(int(peak % 128) - float(points[0, 48, 0])) <= 1 and abs(int(peak // 128) - float(points[0, 48, 1])) <= 1
    assert trained["l2f"].step == 2 and np.isfinite(trained["l2f"].losses[-1][1]["g/total"])


def test_frame_samples_hold_identity_targets_and_their_landmarks(grid_store):
    data = FrameDataset(grid_store, "train", T=3, stride=5)
    item = data[0]
    assert item["identity"].shape == (3, 128, 128) and item["frames"].shape == (3, 3, 128, 128)
    assert item["landmarks"].shape == (3, 68, 2) and item["mfcc"].shape == (3, 28, 12)
    real = ClipReader(grid_store).landmarks(data.clips.iloc[0])
    np.testing.assert_allclose(item["landmarks"].numpy(), real[:3])


def test_the_generator_renders_as_many_frames_as_the_audio_and_exposes_its_landmarks(trained, grid_store):
    from models.zheng.generator import load_a2l, load_l2f

    a2l, subset = load_a2l(trained["a2l"].last_checkpoint)
    l2f, _ = load_l2f(trained["l2f"].last_checkpoint)
    talker = ZhengGenerator(a2l, l2f, subset, batch=16)
    reader = ClipReader(grid_store)
    row = ok_clips(grid_store, "test").iloc[0]
    face, points = reader.faces(row)[0], reader.landmarks(row)[0]
    audio = reader.audio(row)[: 16000 * 23 // 10]  # 2.3 s
    n = math.ceil(len(audio) / 640)
    frames = talker(face, points, audio, n)
    assert frames.shape == (n, 128, 128, 3) == (58, 128, 128, 3) and frames.dtype == np.uint8
    predicted = talker.predict_landmarks(points, audio, n)
    assert predicted.shape == (n, 68, 2) and np.isfinite(predicted).all()
    assert np.abs(predicted - points).mean() < 20  # a residual on the still's landmarks, in crop pixels
    np.testing.assert_array_equal(talker.render(face, predicted), frames)


@pytest.fixture(scope="module")
def lrw_store(lrw_raw, tmp_path_factory) -> Path:
    """A store built by the real `build_dataset` flow from the LRW fixtures in the official layout."""
    from flows.build_dataset import BuildParams, build_dataset

    return Path(build_dataset(BuildParams(dataset="lrw", raw_root=lrw_raw, data_root=tmp_path_factory.mktemp("lrw"),
                                          workers=1)))


def test_an_lrw_store_gives_its_folder_words_and_one_centred_window_per_clip(lrw_store, tmp_path):
    assert zl.vocabulary(lrw_store) == ("ABOUT", "ABSOLUTELY")  # the folder words (500 on the full corpus)
    data = WordWindowDataset(lrw_store, "train")
    clips = ok_clips(lrw_store, "train")
    assert len(data) == len(clips) and [w.start for w in data.windows] == [2] * len(clips)  # 25 of 29 frames
    assert [data.vocab[int(data[i]["word"])] for i in range(len(data))] == clips["word"].tolist()
    # training fills the configs' vocabulary in from the store, so a frozen detector keeps its classes' meaning
    word = train_small(lrw_store, tmp_path / "word", "zheng", "word", steps=2, batch_size=2)
    ckpt = torch.load(word.last_checkpoint, weights_only=True)
    assert ckpt["config"]["vocabulary"] == ["ABOUT", "ABSOLUTELY"]
    assert ckpt["modules"]["detector"]["head.2.weight"].shape[0] == 2  # the LRW head: one logit per word
    with pytest.raises(ValueError, match="the frozen word detector knows 2 words, the a2l windows are labelled "
                                         "with 51"):
        a2l_step_with_grid_labels(word.last_checkpoint, lrw_store)


def a2l_step_with_grid_labels(word_checkpoint: Path, store: Path) -> None:
    """One A2L step whose config keeps GRID's 51 words (an empty vocabulary not filled in from `store`) against the
    frozen LRW detector of `word_checkpoint`."""
    stage = A2LStage()
    cfg = stage.Config.preset("small", batch_size=2, loss=A2LLossConfig(use_temporal_residual=False))
    modules = {**stage.modules(cfg), **build_frozen(stage, cfg, frozen_inputs("zheng", stage, cfg,
                                                                             {"word": word_checkpoint}))}
    batch = batch_of(stage.dataset(store, "train", stage.for_store(cfg, store)), 2)
    stage.step(modules, stage.optimizers(cfg, modules), batch, cfg, NoFabric())
