"""The `talkface` command line: each subcommand runs a flow (DESIGN, "Set-up and entry points")."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn, Optional

import typer

from flows.embedded import start_temporary_prefect

# Embedded defaults: no usage reporting from the libraries (the machines may have no network at all).
for _name, _value in (("PREFECT_SERVER_ANALYTICS_ENABLED", "false"), ("GX_ANALYTICS_ENABLED", "false"),
                      ("DO_NOT_TRACK", "true"), ("MLFLOW_ENABLE_TELEMETRY", "false"),
                      ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")):
    os.environ.setdefault(_name, _value)

app = typer.Typer(add_completion=False, no_args_is_help=True, help="talkface: talking-face datasets, models and benchmarks.")


def _require_complete_store(path: str) -> None:
    """Exit with status 2 and the build to run when `path` is not a complete store (storage/store.py), or with the
    URL and the cause when its object store cannot be reached."""
    from storage.store import IncompleteStoreError, require_complete

    _require_reachable(path)
    try:
        require_complete(path)
    except IncompleteStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _invalid(error) -> str:
    """A pydantic ValidationError as `--flag: message; …`, without the values given (a URL may hold a secret)."""
    return "; ".join((f"--{str(e['loc'][0]).replace('_', '-')}: " if e["loc"] else "") + e["msg"]
                     for e in error.errors())


def _require_reachable(location_: str) -> None:
    """Exit with status 2 when a data root or store is a URL with credentials in it, or an object store that does
    not answer (storage/location.py), before any work."""
    from storage import location

    try:
        location.check_reachable(location.as_path(location.normalise(location_)))
    except (ValueError, ConnectionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.callback()
def main() -> None:
    """talkface: raw talking-face video → validated stores → trained, benchmarked models (Prefect + MLflow)."""


@app.command()
def build(
    raw_root: Path = typer.Option(..., exists=True, file_okay=False, help="raw dataset root in its official layout"),
    data_root: str = typer.Option("data", help="where stores, MLflow and artifacts live"),
    dataset: str = typer.Option("grid", help="dataset adapter"),
    workers: int = typer.Option(1, min=1, help="parallel shard builders"),
    shard_size: int = typer.Option(16, min=1, help="clips per shard"),
    crop: Optional[list[str]] = typer.Option(
        None, help="a crop to cut, NAME or NAME=HxW, repeated (default: face=128x128 mouth=64x64 face_sda=128x96, "
                   "`storage.crops`); face is required"),
    max_head_pose: Optional[float] = typer.Option(
        None, help="near-frontal filter: quarantine clips whose yaw, pitch or roll reaches this many degrees "
                   "(10 as Vougioukas et al. for LRW); the angles are in the manifest either way"),
    runner: str = typer.Option("process", help="process (a local pool of --workers) or dask (prefect-dask)"),
    address: Optional[str] = typer.Option(None, help="tcp://HOST:PORT of a running Dask scheduler (--runner dask); "
                                                     "without it a LocalCluster of --workers processes"),
) -> None:
    """Build a validated store from raw clips; prints the store's path."""
    from pydantic import ValidationError

    from flows.build_dataset import BuildParams, build_dataset
    from storage.crops import DEFAULT_CROPS, parse_crop

    try:
        crops = dict(parse_crop(c) for c in crop) if crop else dict(DEFAULT_CROPS)
        params = BuildParams(dataset=dataset, raw_root=raw_root, data_root=data_root, workers=workers,
                             shard_size=shard_size, crops=crops, runner=runner, address=address,
                             max_head_pose_deg=max_head_pose)
    except ValidationError as exc:
        _fail(f"invalid build parameters: {_invalid(exc)}")
    except ValueError as exc:  # a bad --crop
        typer.echo(f"invalid build parameters: {exc}", err=True)
        raise typer.Exit(2)
    _require_reachable(params.data_root)
    start_temporary_prefect()
    try:
        typer.echo(build_dataset(params))
    except PermissionError as exc:  # the data root refused a write: the message names the key
        _fail(str(exc))


@app.command()
def systems(
    configs: bool = typer.Option(False, help="also print each stage's config fields and small/paper values"),
) -> None:
    """List the registered systems: name, paper, stages, crop, metrics."""
    from dataclasses import fields

    from models.registry import SYSTEMS

    for system in SYSTEMS.values():
        d = system.describe()
        typer.echo(f"{d['name']}\n  paper:   {d['paper']}\n  stages:  {', '.join(d['stages'])}\n"
                   f"  crop:    {d['crop']['field']} {d['crop']['size'][0]}x{d['crop']['size'][1]}\n"
                   f"  metrics: {', '.join(d['metrics'])}")
        if d["imports_released_weights"]:
            typer.echo(f"  authors' weights: talkface import-weights --system {d['name']} --file …")
        if configs:
            for stage in system.stages:
                small, paper = stage.Config.preset("small"), stage.Config.preset("paper")
                typer.echo(f"  {stage.name} ({stage.Config.__name__}; reads {', '.join(stage.reads)}):")
                for f in fields(stage.Config):
                    a, b = getattr(small, f.name), getattr(paper, f.name)
                    typer.echo(f"    {stage.name}.{f.name} = {a}" + ("" if a == b else f"  (paper: {b})"))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def train(
    store: str = typer.Option(..., help="a complete store: a folder, or an s3:// URL"),
    system: str = typer.Option("atvgnet", help="registered system (`talkface systems`)"),
    stage: Optional[str] = typer.Option(None, help="train only this stage (default: all, in order, then register)"),
    preset: str = typer.Option("auto", help="stage configs: paper, small (CPU), auto (paper on GPU)"),
    set_: list[str] = typer.Option([], "--set", help="a stage setting, stage.key=value (repeatable), e.g. "
                                                     "atnet.lr=1e-3 or vgnet.generator.use_dma=false"),
    config: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="YAML {stage: {key: value}}"),
    steps: Optional[int] = typer.Option(None, min=1, help="steps of every trained stage (default: the preset's)"),
    devices: int = typer.Option(1, min=1, help="processes (GPUs) per node; more than one trains under DDP"),
    num_nodes: int = typer.Option(1, min=1, help="machines (inside a SLURM allocation)"),
    accelerator: str = typer.Option("auto", help="auto, cpu or cuda"),
    strategy: str = typer.Option("auto", help="auto or ddp"),
    resume: Optional[str] = typer.Option(None, help="a checkpoint file, or an MLflow run id to continue"),
    input_: list[str] = typer.Option([], "--input", help="STAGE=CHECKPOINT of an earlier stage whose trained network "
                                                         "the stage uses (training the whole system needs none)"),
    alias: str = typer.Option("champion", help="MLflow alias of the registered model"),
    data_root: str = typer.Option("data", help="where mlflow.db and run outputs live"),
) -> None:
    """Train a system (or one stage) on a store; prints the MLflow run id, each stage's last checkpoint and, when
    every stage was trained, the registered model's URI. Stage settings: `talkface systems --configs`."""
    from pydantic import ValidationError

    from flows.train import TrainParams, require_fields, train as train_flow
    from models.registry import get_system
    from tasks.checkpoint import resume_points
    from tasks.configs import ConfigError, parse_assignments

    try:
        inputs = dict(item.split("=", 1) for item in input_ if "=" in item)
        if len(inputs) != len(input_):
            raise ConfigError(f"--input expects STAGE=CHECKPOINT, got {input_}")
        params = TrainParams(system=system, stage=stage, store=store, data_root=data_root, preset=preset,
                             steps=steps, overrides=parse_assignments(set_), config_file=config, devices=devices,
                             num_nodes=num_nodes, accelerator=accelerator, strategy=strategy, resume=resume,
                             inputs=inputs, alias=alias)
        params.configs()
        if resume and Path(resume).is_file():
            resume_points(Path(resume), system, get_system(system).stage_names)  # refuses another's checkpoint
    except ValidationError as exc:
        _fail(_invalid(exc))
    except (KeyError, ConfigError, ValueError, FileNotFoundError) as exc:
        _fail(exc.args[0] if isinstance(exc, KeyError) else str(exc))
    _require_complete_store(store)
    try:
        require_fields(store, system, params.stage_names())
    except ValueError as exc:
        _fail(str(exc))
    start_temporary_prefect()
    out = train_flow(params)
    typer.echo(f"MLflow run: {out['run_id']}")
    for name, result in out["stages"].items():
        typer.echo(f"{name} checkpoint: {result['checkpoint']}")
    if "model_uri" in out:
        typer.echo(f"model: {out['model_uri']} (version {out['model_version']})")


@app.command("import-weights")
def import_weights(
    system: str = typer.Option(..., help="atvgnet or sda: the system whose authors released these files"),
    file: list[Path] = typer.Option(..., "--file", help="a released file, repeated (ATVGnet: atnet_lstm_18.pth and "
                                                        "generator_23.pth; sda: grid.dat, timit.dat or crema.dat)"),
    basics: Optional[Path] = typer.Option(None, exists=True, file_okay=False,
                                          help="ATVGnet: the authors' basics/ folder (default: the shipped copy)"),
    alias: Optional[str] = typer.Option(None, help="MLflow alias (default: authors; sda: authors-grid, -timit or "
                                                   "-crema by the file's name)"),
    data_root: str = typer.Option("data", help="where mlflow.db and run outputs live"),
) -> None:
    """Register the authors' released weights as an MLflow model version (read without running their pickles, every
    tensor checked by name and shape); prints its URI for `generate`, `evaluate` and `benchmark --with-authors`."""
    from pydantic import ValidationError

    from flows.import_weights import ImportParams, import_weights as import_flow

    try:
        params = ImportParams(system=system, files=file, basics=basics, alias=alias, data_root=data_root)
    except ValidationError as exc:
        _fail(_invalid(exc))
    start_temporary_prefect()
    try:
        out = import_flow(params)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    for source in out["sources"]:
        typer.echo(f"{source['file']}: {source['bytes']} bytes, sha256 {source['sha256']}")
    typer.echo(f"model: {out['model_uri']} (version {out['model_version']}; the authors' weights, trained on "
               f"{out['trained_on']})")
    typer.echo(f"MLflow run: {out['run_id']}")


@app.command()
def generate(
    image: Path = typer.Option(..., help="a photo with one face (the largest is used)"),
    audio: Path = typer.Option(..., help="speech: any file ffmpeg reads, any length, rate or channel count"),
    out: Path = typer.Option(..., help="the mp4 to write (25 fps, H.264 + AAC)"),
    system: Optional[str] = typer.Option(None, help="a registered system: its champion, models:/<system>@champion"),
    model: Optional[str] = typer.Option(None, help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN/model or a "
                                                   "model directory (default: models:/atvgnet@champion)"),
    crop_only: bool = typer.Option(False, help="write the generated crop (e.g. 128x128) instead of the photo with "
                                               "the face pasted back"),
    data_root: str = typer.Option("data", help="the MLflow store (mlflow.db) the model URI refers to"),
    device: str = typer.Option("auto", help="auto (GPU when present), cpu or cuda"),
) -> None:
    """Make a talking-face video of IMAGE saying AUDIO with a trained system; prints what it wrote."""
    import tempfile

    from storage.tracking import download_model
    from tasks.generate import GenerateError, generate as generate_video
    from tasks.model_dir import load_generator

    if system and model:
        _fail("give --system or --model, not both")
    uri = model or f"models:/{system or 'atvgnet'}@champion"
    with tempfile.TemporaryDirectory(prefix="talkface-model-") as tmp:
        try:
            generator = load_generator(download_model(uri, data_root, Path(tmp)), device)
            info = generate_video(image, audio, out, generator, crop_only=crop_only)
        except (FileNotFoundError, ValueError, GenerateError) as exc:
            _fail(str(exc))
    w, h = info["size"]
    typer.echo(f"{info['out']}: {info['frames']} frames, {w}x{h}, {info['seconds']:.2f} s at {info['fps']} fps "
               f"(made in {info['elapsed_s']:.1f} s)")


@app.command()
def evaluate(
    store: str = typer.Option(..., help="a complete store: a folder, or an s3:// URL"),
    model: str = typer.Option("models:/atvgnet@champion",
                              help="a registered model: models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN/model or "
                                   "a model directory (its model.json names the system)"),
    checkpoint: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                              help="instead of --model: an AT-net checkpoint, scored on its landmarks"),
    split: str = typer.Option("test"),
    data_root: str = typer.Option("data"),
    sync_model: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                              help="SyncNet checkpoint or syncnet_v2.model for AV offset/confidence"),
    reader_model: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                                help="lip reader checkpoint (train --system lipreader) for WER"),
    max_clips: Optional[int] = typer.Option(None, min=1, help="score only the first N clips"),
) -> None:
    """Score a model on a store split; prints the metrics."""
    from flows.evaluate import EvaluateParams, evaluate as evaluate_flow

    _require_complete_store(store)
    start_temporary_prefect()
    out = evaluate_flow(EvaluateParams(model_uri=None if checkpoint else model, checkpoint=checkpoint, store=store,
                                       split=split, data_root=data_root, sync_model=sync_model, reader_model=reader_model,
                                       max_clips=max_clips))
    typer.echo(f"MLflow run: {out['run_id']}")
    for key, value in out["metrics"].items():
        typer.echo(f"{split}/{key}: {value:.4f}")


@app.command()
def benchmark(
    data_root: str = typer.Option("data", help="stores, mlflow.db, mlartifacts and run outputs"),
    systems: str = typer.Option("atvgnet", help="registered systems to rank, comma-separated"),
    dataset: str = typer.Option("grid", help="dataset: grid, crema_d, lrw or tcd_timit"),
    raw_root: Optional[Path] = typer.Option(None, exists=True, file_okay=False,
                                            help="raw dataset root; default: the bundled GRID clips"),
    preset: str = typer.Option("auto", help="stage configs: paper, small (CPU), auto (paper on GPU)"),
    steps: Optional[int] = typer.Option(None, min=1, help="steps of every stage of every system"),
    set_: list[str] = typer.Option([], "--set", help="a stage setting of one system, system.stage.key=value "
                                                     "(repeatable), e.g. atvgnet.vgnet.batch_size=2"),
    sync_model: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                              help="SyncNet checkpoint or syncnet_v2.model for AV offset/confidence"),
    sync_steps: int = typer.Option(500, min=0, help="without --sync-model: SyncNet steps trained first (0: none)"),
    reader_model: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                                help="lip reader checkpoint for WER (GRID)"),
    reader_steps: int = typer.Option(300, min=0, help="GRID without --reader-model: lip reader steps trained first "
                                                      "(0: WER not scored)"),
    test_dataset: Optional[str] = typer.Option(
        None, help="cross-dataset: score on this dataset's test split instead (e.g. --dataset lrw --test-dataset "
                   "grid, as Zheng et al. 2020); its store is built too, and SyncNet and the lip reader train on it"),
    test_raw_root: Optional[Path] = typer.Option(None, exists=True, file_okay=False,
                                                 help="raw root of --test-dataset; default: the bundled GRID clips"),
    seed: int = typer.Option(0),
    workers: int = typer.Option(1, min=1, help="parallel shard builders"),
    with_authors: bool = typer.Option(False, help="also score the authors' released weights registered by "
                                                  "`talkface import-weights` (atvgnet@authors, sda@authors-grid, ...)"),
) -> None:
    """The main job: build the store, train each system, score it on the test split, rank them beside the papers,
    log it all to MLflow. With --test-dataset, a cross-dataset benchmark: train on --dataset, score on the test split
    of --test-dataset (e.g. `--dataset lrw --raw-root LRW --test-dataset grid`)."""
    from pydantic import ValidationError

    from flows.train_and_benchmark import BenchmarkParams, EmptyTestSplitError, train_and_benchmark as benchmark_flow
    from tasks.configs import ConfigError, parse_assignments
    from tasks.datasets import ADAPTERS

    try:
        if test_raw_root is not None and test_dataset is None:
            raise ConfigError("--test-raw-root is the raw root of --test-dataset: give --test-dataset too")
        if test_dataset in ADAPTERS and test_dataset != "grid" and test_raw_root is None:  # else pydantic's error
            raise ConfigError(f"--test-dataset {test_dataset} needs --test-raw-root: the bundled clips are GRID's")
        params = BenchmarkParams(data_root=data_root, systems=[s.strip() for s in systems.split(",") if s.strip()],
                                 dataset=dataset, raw_root=raw_root, preset=preset, steps=steps,
                                 overrides=parse_assignments(set_), sync_model=sync_model, sync_steps=sync_steps,
                                 reader_model=reader_model, reader_steps=reader_steps, seed=seed, workers=workers,
                                 test_dataset=test_dataset, test_raw_root=test_raw_root, with_authors=with_authors)
        if params.raw_root is None and params.dataset != "grid":
            raise ConfigError(f"--dataset {params.dataset} needs --raw-root: the bundled clips are GRID's")
        params.check_configs()  # every stage setting of every system, before anything runs
        _require_reachable(params.data_root)
    except ValidationError as exc:
        _fail(_invalid(exc))
    except (KeyError, ConfigError) as exc:
        _fail(exc.args[0] if isinstance(exc, KeyError) else str(exc))
    start_temporary_prefect()
    try:
        out = benchmark_flow(params)
    except EmptyTestSplitError as exc:
        _fail(str(exc))
    typer.echo(out["summary"])
    typer.echo(f"store:      {out['store']}")
    if out["test_store"] != out["store"]:
        typer.echo(f"test store: {out['test_store']}")
    for system, result in out["systems"].items():
        typer.echo(f"{system}: model {result['model_uri']}, MLflow run {result['run_id']}")
    for label, result in out["authors"].items():
        typer.echo(f"{label} (the authors' weights): model {result['model_uri']}, MLflow run {result['run_id']}")
    typer.echo(f"MLflow run: {out['run_id']}")
    from mlflow.tracking import MlflowClient

    from storage.tracking import ui_url

    experiment_id = MlflowClient(out["tracking_uri"]).get_run(out["run_id"]).info.experiment_id
    if out["tracking_uri"].startswith(("http://", "https://")):
        typer.echo(f"Open the MLflow UI:  {ui_url(out['tracking_uri'], experiment_id)}")
    else:
        mlflow_exe = Path(sys.executable).with_name("mlflow")
        typer.echo(f"Open the MLflow UI:  {mlflow_exe} ui --backend-store-uri {out['tracking_uri']} --host 127.0.0.1 "
                   f"--port 5000\n                     then browse {ui_url('http://127.0.0.1:5000', experiment_id)}"
                   " (or run `talkface ui`)")


@app.command()
def serve(
    raw_root: Optional[Path] = typer.Option(None, exists=True, file_okay=False,
                                            help="raw dataset root; default: the bundled GRID clips"),
    data_root: str = typer.Option("data", help="stores, mlflow.db and run outputs of the served runs"),
    dataset: str = typer.Option("grid", help="dataset of both deployments"),
    build_cron: str = typer.Option("0 3 * * 1", help="cron schedule of the store rebuild (default: Mondays 03:00)"),
) -> None:
    """Serve the deployments `build_dataset/scheduled-build` (on its cron schedule) and
    `train_and_benchmark/one-click` (started from the Prefect UI) until interrupted. Needs a Prefect server:
    start `talkface ui` and export the PREFECT_API_URL it prints."""
    from prefect import serve as prefect_serve
    from prefect.settings import get_current_settings

    from flows.deployments import deployments

    api = get_current_settings().api.url
    if not api:
        typer.echo("error: no Prefect server: run `talkface ui` (or `prefect server start --host 127.0.0.1`) and "
                   "export PREFECT_API_URL=http://127.0.0.1:4200/api first", err=True)
        raise typer.Exit(2)
    typer.echo(f"serving on {api}: build_dataset/scheduled-build ({build_cron}), train_and_benchmark/one-click")
    prefect_serve(*deployments(raw_root, data_root, dataset, build_cron))


@app.command()
def ui(
    data_root: str = typer.Option("data", help="the MLflow store (mlflow.db, mlartifacts) to show"),
    host: str = typer.Option("127.0.0.1", help="interface both servers bind to (loopback unless you mean it)"),
    prefect_port: int = typer.Option(4200, help="Prefect server port"),
    mlflow_port: int = typer.Option(5000, help="MLflow server port"),
    database: Optional[str] = typer.Option(
        None, envvar="TALKFACE_DATABASE", show_default=False,
        help="postgresql://ROLE@HOST:PORT: both servers on its databases talkface_prefect and talkface_mlflow "
             "(password from PGPASSWORD or ~/.pgpass, never the URL; deploy/README.md); default: SQLite"),
) -> None:
    """Start the Prefect server and the MLflow server on 127.0.0.1, print their URLs, and stop both on Ctrl-C."""
    from flows.servers import run_servers

    try:
        run_servers(data_root, host, prefect_port, mlflow_port, database=database, echo=typer.echo)
    except (ValueError, ConnectionError) as exc:  # a bad or unreachable --database, before anything started
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


if __name__ == "__main__":
    app()
