"""Flow `train_and_benchmark`, the one-click run: build the store (reused when its digest is unchanged) → the SyncNet
expert and, on GRID, the lip reader for WER, each trained once on it (shared by every system, unless given) → for
each system: train, register, evaluate on the test split → one leaderboard, the systems side by side and beside the
papers' published numbers for the dataset (`tasks.published`).

Cross-dataset (`test_dataset`, as Zheng et al. 2020 train on LRW and test on GRID): two stores, the train store
from `dataset`/`raw_root` and the test store from `test_dataset`/`test_raw_root`. Every system trains on the train
store and is scored on the test store's test split; the experts (SyncNet; the lip reader when the test dataset is
GRID) measure the test data, so they are trained on the test store; the published numbers are the test dataset's.

MLflow: one parent run (the store, or the train and test stores, linked as its input datasets, name and digest); a
nested run per system, with its training and its evaluation nested under it; the SyncNet and lip reader trainings
nested under the parent. The leaderboard goes to the parent (`leaderboard.md`, and each score as
`test/<tested dataset>/<system>/<metric>`) and to Prefect as a markdown artifact.

Run: `talkface benchmark --systems atvgnet --dataset grid [--raw-root RAW]` (the bundled GRID clips without
--raw-root), `talkface benchmark --dataset lrw --raw-root LRW --test-dataset grid` (cross-dataset), `make demo`, or
the `one-click` deployment in the Prefect UI (`talkface serve`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field, field_validator, model_validator

from flows.build_dataset import BuildParams, build_dataset
from flows.evaluate import EvaluateParams, evaluate
from flows.parameters import Location
from flows.train import SystemSettings, TrainParams, train
from models.registry import SYSTEMS
from storage import location, store, tracking
from storage.dataset import ok_clips
from tasks import published
from tasks.datasets import ADAPTERS

BUNDLED_GRID = Path(__file__).resolve().parents[1] / "samples" / "grid"
GENERATING = tuple(name for name, s in SYSTEMS.items() if s.generator is not None)
SystemName = Literal[GENERATING]  # type: ignore[valid-type]
DatasetName = Literal[tuple(ADAPTERS)]  # type: ignore[valid-type]


class BenchmarkParams(BaseModel):
    """Parameters of a train-and-benchmark run (the Prefect UI form)."""

    systems: list[SystemName] = Field(["atvgnet"], min_length=1, description="registered systems to train and rank")
    dataset: DatasetName = Field("grid", description="dataset to build and train on (and test on, "
                                                        "without test_dataset)")
    raw_root: Path | None = Field(None, description="raw dataset root in its official layout; default: the GRID "
                                                    "clips bundled with talkface (dataset grid only)")
    data_root: Location = Field("data", description="stores, mlflow.db, mlartifacts and run outputs (a "
                                         "folder, or s3://bucket/prefix: deploy/README.md)")
    preset: Literal["auto", "paper", "small"] = Field(
        "auto", description='stage configs: "paper" (published sizes), "small" (CPU sizes), "auto" (paper on GPU)')
    steps: int | None = Field(None, ge=1, description="steps of every stage of every system (none: the presets')")
    settings: list[SystemSettings] = Field(  # type: ignore[valid-type]
        default_factory=list, description="stage settings, one entry per system: its stages and fields (empty: the "
                                          "preset's values)")
    overrides: dict[str, Any] = Field(default_factory=dict, description='stage settings per system as dotted keys, '
                                      'e.g. {"atvgnet.vgnet.batch_size": 2}; applied after `settings`')
    sync_model: Path | None = Field(None, description="SyncNet checkpoint or syncnet_v2.model for AV offset and "
                                                      "confidence (none: one is trained, sync_steps)")
    sync_steps: int = Field(500, ge=0, description="without sync_model: SyncNet steps trained first on the store "
                                                   "tested on, shared by every system (0: AV offset and confidence "
                                                   "not scored)")
    reader_model: Path | None = Field(None, description="lip reader checkpoint for WER (GRID; none: one is "
                                                        "trained, reader_steps)")
    reader_steps: int = Field(300, ge=0, description="testing on GRID without reader_model: lip reader steps trained "
                                                     "first on the store tested on, shared by every system (0: WER "
                                                     "not scored)")
    seed: int = Field(0, description="training seed of every stage")
    test_dataset: DatasetName | None = Field(  # type: ignore[valid-type]
        None, description="a cross-dataset benchmark: train on `dataset`, score on this dataset's test split (e.g. "
                          "dataset lrw, test_dataset grid as Zheng et al. 2020); none: `dataset`'s own test split")
    test_raw_root: Path | None = Field(None, description="raw root of test_dataset in its official layout; default: "
                                                         "the bundled GRID clips (test_dataset grid only)")
    workers: int = Field(1, ge=1, description="parallel shard builders")
    with_authors: bool = Field(False, description="also score the authors' released weights of the benchmarked "
                                                  "systems registered by `talkface import-weights` (atvgnet@authors; "
                                                  "sda@authors-grid, -timit, -crema), as rows of their own")
    experiment: str = Field("talkface", description="MLflow experiment")

    @property
    def tested_on(self) -> str:
        """The dataset whose test split is scored: `test_dataset`, or `dataset` itself."""
        return self.test_dataset or self.dataset

    @field_validator("systems")
    @classmethod
    def _unique(cls, systems: list[str]) -> list[str]:
        if len(set(systems)) != len(systems):
            raise ValueError(f"a system is listed twice: {systems}")
        return systems

    @model_validator(mode="after")
    def _test_raw_root_of_test_dataset(self) -> "BenchmarkParams":
        if self.test_raw_root is not None and self.test_dataset is None:
            raise ValueError("test_raw_root is the raw root of test_dataset: give test_dataset too")
        if self.test_raw_root is None and self.test_dataset not in (None, "grid"):
            raise ValueError(f"test_dataset {self.test_dataset} needs test_raw_root: the bundled clips are GRID's")
        return self

    @model_validator(mode="after")
    def _settings_of_benchmarked_systems(self) -> "BenchmarkParams":
        named = [s.system for s in self.settings]
        if len(set(named)) != len(named) or not set(named) <= set(self.systems):
            raise ValueError(f"settings are for {', '.join(named)}: at most one entry per benchmarked system "
                             f"({', '.join(self.systems)})")
        return self

    @model_validator(mode="after")
    def _overrides_name_benchmarked_systems(self) -> "BenchmarkParams":
        for key in self.overrides:
            if key.split(".", 1)[0] not in self.systems or key.count(".") < 2:
                raise ValueError(f"override {key!r}: expected <system>.<stage>.<key> of a benchmarked system "
                                 f"({', '.join(self.systems)})")
        return self

    def check_configs(self) -> None:
        """Build every system's stage configs as its training will (`flows.train.TrainParams.configs`), so a bad
        setting fails before the store is built. Raises tasks.configs.ConfigError naming the key."""
        for system in self.systems:
            TrainParams(system=system, store=self.data_root, preset=self.preset, steps=self.steps,  # store unused
                        settings=self.system_settings(system), overrides=self.system_overrides(system)).configs()

    def system_settings(self, system: str):
        """The `settings` entry of `system`, or None."""
        return next((s for s in self.settings if s.system == system), None)

    def system_overrides(self, system: str) -> dict[str, Any]:
        """The overrides of one system's stages ("<system>.<stage>.<key>" -> "<stage>.<key>"), with the seed."""
        out = {f"{stage}.seed": self.seed for stage in SYSTEMS[system].stage_names}
        out.update({k.split(".", 1)[1]: v for k, v in self.overrides.items() if k.split(".", 1)[0] == system})
        return out


class EmptyTestSplitError(ValueError):
    """The store has no ok clip in its test split: nothing to score."""


def require_test_clips(store_dir: Path, dataset: str) -> None:
    """Raise EmptyTestSplitError, naming the split and its speakers, when the store's test split has no ok clip:
    there would be nothing to score, so the benchmark stops before training."""
    try:
        ok_clips(store_dir, "test")
    except ValueError:
        adapter = ADAPTERS[dataset]
        speakers = getattr(adapter, "TEST_SPEAKERS", None) or getattr(adapter, "TEST_NUMBERS", None)  # TCD-TIMIT
        which = (f"its test speakers: {', '.join(sorted(map(str, speakers)))}" if speakers else
                 f"{dataset}'s own test folders")
        raise EmptyTestSplitError(f"{store_dir}: no ok clip in the test split ({dataset}: {which}); add clips of "
                                  "the test split to the raw root, or benchmark another dataset") from None


@flow(name="train_and_benchmark")
def train_and_benchmark(params: BenchmarkParams) -> dict:
    """Build → SyncNet → per system: train, evaluate → leaderboard. With `test_dataset`: build the test store too
    (its test split must hold ok clips), train the systems on the train store, the experts and the scores on the
    test store. Returns {"run_id" (the parent), "tracking_uri", "store" (trained on), "test_store" (scored on; the
    same store without test_dataset), "systems": {system: {"run_id", "train_run_id", "evaluate_run_id",
    "model_uri", "stages", "metrics"}}, "authors" (with_authors: {"<system>@<alias>": {"system", "key", "model_uri",
    "trained_on", "run_id", "metrics"}}), "sync_model", "reader_model", "summary" (markdown)}."""
    log = get_run_logger()
    data_root = location.as_path(params.data_root)
    if params.raw_root is None and params.dataset != "grid":
        raise ValueError(f"dataset {params.dataset} needs raw_root: the bundled clips are GRID's")
    cross = params.test_dataset is not None
    if cross:  # the test store first: an empty test split stops the run before the (larger) train store is built
        test_store = _build_store(params.test_dataset, params.test_raw_root or BUNDLED_GRID, params, data_root)
        require_test_clips(test_store, params.test_dataset)
        store_dir = _build_store(params.dataset, params.raw_root or BUNDLED_GRID, params, data_root)
    else:
        store_dir = test_store = _build_store(params.dataset, params.raw_root or BUNDLED_GRID, params, data_root)
        require_test_clips(store_dir, params.dataset)
    card, test_card = store.read_card(store_dir), store.read_card(test_store)
    tags = {"flow": "train_and_benchmark", "systems": ",".join(params.systems), "dataset": params.dataset}
    name = f"benchmark-{'+'.join(params.systems)}-{params.dataset}"
    if cross:
        tags["test_dataset"] = params.test_dataset
        name += f"-to-{params.test_dataset}"
    uri, run_id, _ = tracking.open_run(data_root, params.experiment, None, name, tags)
    client = MlflowClient(uri)
    results: dict[str, dict] = {}
    try:
        stores = [Param("store_version", card["version"]), Param("store_clips_ok", str(card["counts"]["ok"]))]
        if cross:
            tracking.log_store_input(client, run_id, store_dir, card, "train")
            tracking.log_store_input(client, run_id, test_store, test_card, "test")
            stores += [Param("test_store_version", test_card["version"]),
                       Param("test_store_clips_ok", str(test_card["counts"]["ok"]))]
        else:
            tracking.log_store_input(client, run_id, store_dir, card, "benchmark")
        client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(params.model_dump().items())]
                         + stores)
        common = dict(store=store_dir, data_root=data_root, preset=params.preset, steps=params.steps,
                      experiment=params.experiment)
        experts = {**common, "store": test_store}  # the experts measure the data scored: the test store's
        sync_model = params.sync_model
        if sync_model is None and params.sync_steps:
            synced = train(TrainParams(system="syncnet", **{**experts, "steps": params.sync_steps},
                                       overrides={"syncnet.seed": params.seed}, parent_run_id=run_id))
            sync_model = Path(synced["checkpoint"])
        reader_model = params.reader_model
        if reader_model is None and params.reader_steps and params.tested_on == "grid":
            read = train(TrainParams(system="lipreader", **{**experts, "steps": params.reader_steps},
                                     overrides={"lipreader.seed": params.seed}, parent_run_id=run_id))
            reader_model = Path(read["checkpoint"])
        for system in params.systems:
            results[system] = benchmark_system(system, params, common, test_store, sync_model, reader_model,
                                               data_root, run_id)
        authors, missing = (benchmark_authors(params, client, test_store, sync_model, reader_model, data_root, run_id)
                            if params.with_authors else ({}, []))
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(f"test/{params.tested_on}/{key}/{k}", float(v), now, 0)
                                          for key, r in [*results.items(), *((a["key"], a) for a in authors.values())]
                                          for k, v in r["metrics"].items()])
        summary = render_summary(params, card, run_id, results, test_card if cross else None, authors, missing)
        client.log_text(run_id, summary, "leaderboard.md")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    on = f"trained on {params.dataset}, tested on {params.test_dataset}" if cross else f"on {params.dataset}"
    create_markdown_artifact(key="benchmark", markdown=summary,
                             description=f"{', '.join(params.systems)} {on}: the leaderboard")
    log.info("benchmark done: MLflow run %s", run_id)
    return {"run_id": run_id, "tracking_uri": uri, "store": str(store_dir), "test_store": str(test_store),
            "systems": results, "authors": authors, "sync_model": str(sync_model) if sync_model else None,
            "reader_model": str(reader_model) if reader_model else None, "summary": summary}


def _build_store(dataset: str, raw_root: Path, params: BenchmarkParams, data_root: Path) -> Path:
    """The store of `dataset` built from `raw_root` with the build's default crops (reused when unchanged)."""
    return location.as_path(build_dataset(BuildParams(dataset=dataset, raw_root=raw_root, data_root=data_root,
                                          workers=params.workers)))


def benchmark_system(system: str, params: BenchmarkParams, common: dict, test_store: Path, sync_model: Path | None,
                     reader_model: Path | None, data_root: Path, parent_run_id: str) -> dict:
    """One system's nested run: train on `common["store"]` (registered as `<system>`), then evaluate the registered
    version on `test_store`'s test split."""
    tags = {"system": system, "dataset": params.dataset}
    if params.test_dataset is not None:
        tags["test_dataset"] = params.test_dataset
    uri, system_run, _ = tracking.open_run(data_root, params.experiment, None, system, tags,
                                           parent_run_id=parent_run_id)
    client = MlflowClient(uri)
    try:
        trained = train(TrainParams(system=system, **common, settings=params.system_settings(system),
                                    overrides=params.system_overrides(system),
                                    parent_run_id=system_run))
        scored = evaluate(EvaluateParams(model_uri=trained["model_version_uri"], store=test_store, split="test",
                                         data_root=data_root, sync_model=sync_model, reader_model=reader_model,
                                         experiment=params.experiment,
                                         parent_run_id=system_run))
        now = int(time.time() * 1000)
        client.log_batch(system_run, metrics=[Metric(f"test/{params.tested_on}/{k}", float(v), now, 0)
                                              for k, v in scored["metrics"].items()])
    except BaseException:
        client.set_terminated(system_run, "FAILED")
        raise
    client.set_terminated(system_run)
    return {"run_id": system_run, "train_run_id": trained["run_id"], "evaluate_run_id": scored["run_id"],
            "model_uri": trained["model_version_uri"], "stages": trained["stages"], "metrics": scored["metrics"]}


def benchmark_authors(params: BenchmarkParams, client: MlflowClient, test_store: Path, sync_model: Path | None,
                      reader_model: Path | None, data_root: Path, parent_run_id: str) -> tuple[dict, list[str]]:
    """({"<system>@<alias>": {"system", "key" (the MLflow metric prefix "<system>-<alias>"), "model_uri", "trained_on",
    "run_id", "metrics"}}, [a note per benchmarked system with an importer but no imported weights]): each
    benchmarked system's released weights (`storage.tracking.released_versions`: those trained on the tested
    dataset, else all of them) evaluated on `test_store`'s test split, nested under the benchmark run."""
    scored, missing = {}, []
    for system in params.systems:
        if SYSTEMS[system].importer is None:
            continue
        versions = tracking.released_versions(client, system)
        if not versions:
            missing.append(f"{system}: no released weights in this MLflow store (`talkface import-weights --system "
                           f"{system} --file …`)")
            continue
        same = [v for v in versions if v[2].get("trained_on") == params.tested_on]
        for alias, version, tags in same or versions:
            out = evaluate(EvaluateParams(model_uri=f"models:/{system}/{version}", store=test_store, split="test",
                                          data_root=data_root, sync_model=sync_model, reader_model=reader_model,
                                          experiment=params.experiment, parent_run_id=parent_run_id))
            scored[f"{system}@{alias}"] = {"system": system, "key": f"{system}-{alias}",
                                           "model_uri": f"models:/{system}/{version}",
                                           "trained_on": tags.get("trained_on", "unknown"), "run_id": out["run_id"],
                                           "metrics": out["metrics"]}
    return scored, missing


def render_summary(params: BenchmarkParams, card: dict, run_id: str, results: dict[str, dict],
                   test_card: dict | None = None, authors: dict[str, dict] | None = None,
                   missing: list[str] | None = None) -> str:
    """The benchmark's markdown: what ran, the leaderboard beside the published numbers, per-system details.
    card: the store trained on; test_card: the store tested on, when it is another (`test_dataset`); authors,
    missing: `benchmark_authors`' scores of the released weights (their own leaderboard columns) and notes."""
    first = next(iter(results.values()))["metrics"]
    # the published numbers are the tested dataset's; tasks.published titles a paper's column trained on another
    # dataset ("(trained on LRW)": Zheng et al. 2020, Tab. III) and notes under a paper table trained otherwise
    tested = params.tested_on
    if test_card is None:
        lines = [f"# Benchmark on {params.dataset} (store `{card['version']}`)\n"]
        scored_on = "this store's"
    else:
        kind = "a cross-dataset benchmark" if params.test_dataset != params.dataset else "a cross-store benchmark"
        lines = [f"# Trained on {params.dataset} (store `{card['version']}`), tested on {tested} "
                 f"(store `{test_card['version']}`) — {kind}\n",
                 f"Every system trained on the {params.dataset} store and was scored on the {tested} store's test "
                 f"split. The experts measure the test data: {_experts(params)}. The published numbers beside "
                 f"them are the papers' on {tested}, each trained on {tested} unless its title names another "
                 "dataset (a cross-dataset result, as Zheng et al. 2020's Tab. III: GRID, trained on LRW).\n"]
        scored_on = "the test store's"
    lines += [f"MLflow run `{run_id}`. Test split: {int(first['n_clips'])} clips, {int(first['n_frames'])} frames. "
              f"LMD is in pixels of {scored_on} 128-px aligned crops.\n",
              "## Leaderboard beside the published numbers\n",
              published.leaderboard_markdown({**{s: r["metrics"] for s, r in results.items()},
                                              **{label: a["metrics"] for label, a in (authors or {}).items()}},
                                             tested)]
    for system, r in results.items():
        m = r["metrics"]
        stages = ", ".join(f"{name} {s['step']} steps (final loss {s['final_loss']:.4f})"
                           for name, s in r["stages"].items())
        facts = [f"Paper-compatible forms (the published scripts' uint8 arithmetic): PSNR {m['psnr_paper']:.2f} dB, "
                 f"SSIM {m['ssim_paper']:.3f}; LMD summed over the 20 mouth points as their code does: "
                 f"{m['lmd_sum']:.2f}.", f"The real frames score CPBD {m['cpbd_real']:.3f}."]
        if "blinks_per_s_real" in m:
            facts.append(f"They blink {m['blinks_per_s_real']:.2f} times a second.")
        if "acd" in m:
            facts.append(f"ACD (dlib descriptors) {m['acd']:.3f}.")
        if SYSTEMS[system].crop.field != "face":
            facts.append(f"PSNR, SSIM and CPBD are on its {SYSTEMS[system].crop.field} crops; LMD and AV sync on "
                         "them pasted back into each clip's first face frame.")
        if "wer" in m:
            facts.append(f"WER by the lip reader: {100 * m['wer']:.1f} % greedy, {100 * m['wer_snapped']:.1f} % "
                         f"snapped to the GRID grammar; on the real test videos {100 * m['wer_real']:.1f} % / "
                         f"{100 * m['wer_snapped_real']:.1f} % (the same reader: the gap is what the generator "
                         "loses).")
        elif "wer" in SYSTEMS[system].metrics:
            facts.append("WER needs a lip reader (`reader_model` or `reader_steps`, GRID only): not scored.")
        if "av_offset" not in m:
            facts.append("AV offset and confidence need a sync model (`sync_model` or `sync_steps`).")
        lines.append(f"\n### {system}\n\nModel `{r['model_uri']}`, MLflow run `{r['run_id']}`: {stages}. "
                     + " ".join(facts) + "\n")
        tables = published.tables_markdown(system, m, tested, trained_on=params.dataset)
        if tables:
            lines.append(f"Beside the paper's own tables:\n\n{tables}")
    if authors or missing:
        lines.append("\n## The authors' released weights\n\nScored by the same pipeline on the same test split, "
                     "each rendering by its authors' protocol (their alignment and features) and warped back into "
                     "the store's crop; the `<system>@<alias>` columns of the leaderboard.\n")
    for label, a in (authors or {}).items():
        m = a["metrics"]
        lines.append(f"- **{label}**: model `{a['model_uri']}`, trained by the authors on {a['trained_on']}, "
                     f"MLflow run `{a['run_id']}`: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}, "
                     f"LMD {m['lmd']:.2f}.")
    lines += [f"- {note}" for note in missing or []]
    return "\n".join(lines)


def _experts(params: BenchmarkParams) -> str:
    """Where a cross-dataset run's SyncNet and lip reader came from, as a clause of the summary."""
    on = f"trained on the {params.tested_on} store"
    sync = ("SyncNet is the given sync_model" if params.sync_model else
            f"SyncNet {on} ({params.sync_steps} steps)" if params.sync_steps else
            "no SyncNet (sync_steps 0: AV offset and confidence not scored)")
    reader = ("the lip reader is the given reader_model" if params.reader_model else
              "no lip reader (WER on GRID only)" if params.tested_on != "grid" else
              f"the lip reader {on} ({params.reader_steps} steps)" if params.reader_steps else
              "no lip reader (reader_steps 0: WER not scored)")
    return f"{sync}; {reader}"


if __name__ == "__main__":
    from pydantic_settings import CliApp

    train_and_benchmark(CliApp.run(BenchmarkParams))  # `python -m flows.train_and_benchmark --help` lists the fields
