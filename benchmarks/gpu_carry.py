"""What travels to a lent GPU machine for the GPU check (`benchmarks/gpu_check.sh`), and a CPU preflight that shows,
here and in `make test`, that it is enough there.

The GPU machine (one H100 or H200, about 15 minutes of machine time in all, commands of at most 10 minutes) has its
own Python 3.12 with PyTorch and the distributions listed in `gpu_machine_packages.txt`, no package registry, and
takes a working tree of at most 64 MiB, what is carried included. So:

- `prepare` (here, once): wheels for CPython 3.12 on manylinux x86_64 of what the check imports and the machine
  lacks (`NEEDED`) and of their own requirements the machine lacks, at the versions installed here (sdists are built
  into wheels here, never there); and a store of the bundled GRID clips built by `talkface build`. Both go into
  `benchmarks/gpu_carry/` (git-ignored; carried by the device call).
- `preflight` (seconds): (1) every carried wheel installs on CPython 3.12 manylinux x86_64, one version each, and each
  requirement is on the machine or carried; (2) the working tree plus the carry fits the 64 MiB; (3) in an
  interpreter where every package the machine lacks and nobody carries is refused at import (`block_missing`, by a
  `sitecustomize` that DataLoader workers load too), `gpu_check.py --plan` imports the check and every stage, builds
  each stage's training dataset at the paper preset on the carried store and checks it holds the stage's batch.
- `preflight --dry-run` (about a minute and a half on two cores): the whole check in that interpreter, on the
  CPU, at the small preset for two steps: every stage, checkpoint, export and generator call the GPU run makes.

    python benchmarks/gpu_carry.py prepare [--carry DIR] [--wheels-only]
    python benchmarks/gpu_carry.py preflight [--carry DIR] [--store STORE] [--dry-run]
"""
from __future__ import annotations

import argparse
import importlib.abc
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
CARRY = ROOT / "benchmarks" / "gpu_carry"
MACHINE_LIST = Path(__file__).with_name("gpu_machine_packages.txt")
SITE = Path(__file__).with_name("gpu_preflight_site")  # its sitecustomize.py calls block_missing
WHEELS_ENV = "TALKFACE_GPU_WHEELS"
# The dry run: the whole check on the CPU, briefly (small preset, 2 steps, no workers, one inference batch)
DRY_RUN = ("--device", "cpu", "--preset", "small", "--steps", "2", "--warmup", "1", "--num-workers", "0", "--calls",
           "1", "--batches", "2")
TREE_LIMIT = 64 * 2**20  # bytes a device call takes: tracked and untracked files plus what is carried
TREE_MARGIN = 4 * 2**20  # room for the tree to grow between a preflight and the run

# What the check imports that the GPU machine lacks; their requirements the machine lacks follow (`requirement_pins`).
# zarr: the store; lightning-fabric: the training loop (the machine's pytorch-lightning may not ship it under that
# name); python-speech-features: MFCC; librosa: the lip GAN's log-mel spectrograms.
NEEDED = ("zarr", "lightning-fabric", "python-speech-features", "librosa")
PROJECT = "talkface"  # the repository itself travels as the working tree
# The carried store's clips: about 5.4 MiB each once built, so six fit beside the wheels; speaker s2 is the test split
# (splits go by speaker), the rest train (the check repeats a split smaller than a paper batch up to it).
CLIPS = ("s1/bbaf2n", "s1/bbaf3s", "s1/bbaszn", "s1/bbbm2p", "s1/bbie9s", "s2/swwp2s")

# The GPU machine's interpreter, for requirement markers and wheel tags
TARGET_MARKERS = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.3",
                  "implementation_name": "cpython", "platform_python_implementation": "CPython",
                  "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix"}
TARGET_PLATFORMS = ([f"manylinux_2_{n}_x86_64" for n in range(35, 4, -1)]
                    + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"])
DOWNLOAD_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                      "manylinux2014_x86_64", "manylinux1_x86_64")


def machine_packages() -> set[str]:
    """The GPU machine's distributions (canonical names) from `gpu_machine_packages.txt`."""
    lines = MACHINE_LIST.read_text().splitlines()
    return {canonicalize_name(line.strip()) for line in lines if line.strip() and not line.startswith("#")}


def carried_wheels(wheels: Path) -> dict[str, list[Path]]:
    """{canonical distribution name: its wheel files} in `wheels` (several files of one name are an error the
    preflight reports)."""
    out: dict[str, list[Path]] = {}
    for path in sorted(Path(wheels).glob("*.whl")):
        out.setdefault(canonicalize_name(parse_wheel_filename(path.name)[0]), []).append(path)
    return out


def target_requirements(requires: list[str] | None) -> list[Requirement]:
    """The requirements (Requires-Dist lines) that apply on the GPU machine's Python 3.12, without extras."""
    reqs = [Requirement(line) for line in requires or []]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({**TARGET_MARKERS, "extra": ""})]


def requirement_pins(needed: tuple[str, ...] = NEEDED, machine: set[str] | None = None) -> dict[str, str]:
    """{distribution: version installed here} of `needed` and, transitively, of every requirement of theirs the GPU
    machine lacks. Raises importlib.metadata.PackageNotFoundError for one not installed here."""
    machine = machine_packages() if machine is None else machine
    pins: dict[str, str] = {}
    todo = list(needed)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in pins or name in machine:
            continue
        dist = importlib.metadata.distribution(name)
        pins[name] = dist.version
        todo += [r.name for r in target_requirements(dist.requires)]
    return dict(sorted(pins.items()))


def download_wheels(pins: dict[str, str], wheels: Path) -> None:
    """A wheel of each pinned distribution for CPython 3.12 manylinux x86_64 into `wheels`: the binary from the
    registry, or, for a distribution published only as an sdist, a wheel built from it here (pure Python)."""
    wheels.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    platforms = [arg for p in DOWNLOAD_PLATFORMS for arg in ("--platform", p)]
    for name, version in pins.items():
        binary = subprocess.run([*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                                 "--implementation", "cp", *platforms, "-d", str(wheels), f"{name}=={version}"],
                                capture_output=True, text=True)
        if binary.returncode != 0:  # no wheel published: build one here from the sdist
            built = subprocess.run([*pip, "wheel", "--no-deps", "--no-binary", name, "-w", str(wheels),
                                    f"{name}=={version}"], capture_output=True, text=True)
            if built.returncode != 0:
                raise RuntimeError(f"no wheel of {name}=={version} for CPython 3.12:\n{binary.stderr}\n"
                                   f"and building one from its sdist failed:\n{built.stderr}")


def build_store(carry: Path, clips: tuple[str, ...] = CLIPS) -> Path:
    """`clips` of the bundled GRID samples built by `talkface build` into `carry/store`, without its validation
    report and montage (the check reads shards and manifest only)."""
    raw, data = carry / "raw", carry / "data"
    for clip in clips:
        speaker, name = clip.split("/")
        for path in (f"{speaker}/{name}.mpg", f"alignments/{speaker}/{name}.align"):  # the official layout
            (raw / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / "samples" / "grid" / path, raw / path)
    talkface = Path(sys.executable).with_name("talkface")
    out = subprocess.run([str(talkface), "build", "--raw-root", str(raw), "--data-root", str(data), "--shard-size",
                          "4"], check=True, capture_output=True, text=True)
    store = Path(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(store / "validation")
    (store / "montage.png").unlink()
    shutil.rmtree(carry / "store", ignore_errors=True)
    store.rename(carry / "store")
    shutil.rmtree(data)
    shutil.rmtree(raw)
    return carry / "store"


def prepare(carry: Path = CARRY, wheels_only: bool = False) -> None:
    """Fill `carry` (module docstring): wheels/ and, unless wheels_only, store/."""
    pins = requirement_pins()
    shutil.rmtree(carry / "wheels", ignore_errors=True)
    download_wheels(pins, carry / "wheels")
    print("carried wheels:", ", ".join(f"{n}=={v}" for n, v in pins.items()))
    if not wheels_only:
        print("store:", build_store(carry))
    print(f"{carry}: {folder_bytes(carry) / 2**20:.1f} MiB")


# --- the preflight's checks ----------------------------------------------------------------------------------------

def wheel_problems(wheels: Path, machine: set[str]) -> list[str]:
    """What would stop the carried wheels installing and importing on the GPU machine: a wheel not for CPython 3.12
    manylinux x86_64, two versions of one distribution, a requirement neither on the machine nor carried."""
    supported = {*cpython_tags((3, 12), platforms=TARGET_PLATFORMS),
                 *compatible_tags((3, 12), "cp312", platforms=TARGET_PLATFORMS)}
    carried = carried_wheels(wheels)
    problems = []
    for name, paths in carried.items():
        if len(paths) > 1:
            problems.append(f"{name}: {len(paths)} wheels ({', '.join(p.name for p in paths)}); keep one")
        for path in paths:
            if not parse_wheel_filename(path.name)[3] & supported:
                problems.append(f"{path.name}: not installable on CPython 3.12 manylinux x86_64")
            for req in target_requirements(wheel_requires(path)):
                if canonicalize_name(req.name) not in machine and canonicalize_name(req.name) not in carried:
                    problems.append(f"{path.name} requires {req}, which is neither on the GPU machine nor carried")
    return problems


def wheel_requires(path: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA."""
    with zipfile.ZipFile(path) as whl:
        meta = next(n for n in whl.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        return HeaderParser().parsestr(whl.read(meta).decode()).get_all("Requires-Dist") or []


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink())


def tree_bytes(carry: Path) -> int:
    """Bytes a device call sends: the repository's tracked and untracked-but-not-ignored files, and `carry`."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    files = [ROOT / name for name in listed if name]
    return sum(p.stat().st_size for p in files if p.is_file()) + folder_bytes(carry)


class MissingOnGPUMachine(importlib.abc.MetaPathFinder):
    """An import hook that refuses the top-level modules of distributions the GPU machine lacks, as the machine's
    Python would (ModuleNotFoundError), so code that imports them fails here first."""

    def __init__(self, blocked: dict[str, list[str]]):
        self.blocked = blocked  # {top-level module: its distributions}

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in self.blocked:
            raise ModuleNotFoundError(f"No module named {fullname!r}: the GPU machine lacks it (distribution "
                                      f"{', '.join(self.blocked[top])}) and it is not carried "
                                      "(benchmarks/gpu_carry.py)", name=fullname)
        return None


def block_missing(wheels: Path | str) -> MissingOnGPUMachine:
    """Install `MissingOnGPUMachine` for every distribution installed here that is neither on the GPU machine, nor
    carried in `wheels`, nor talkface itself; returns it."""
    allowed = machine_packages() | set(carried_wheels(Path(wheels))) | {PROJECT}
    blocked = {top: dists for top, dists in importlib.metadata.packages_distributions().items()
               if not any(canonicalize_name(d) in allowed for d in dists)}
    finder = MissingOnGPUMachine(blocked)
    sys.meta_path.insert(0, finder)
    return finder


def blocked_env(wheels: Path) -> dict[str, str]:
    """The environment of a process (and its DataLoader workers) whose imports see only what the GPU machine has."""
    path = os.pathsep.join(p for p in (str(SITE), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, WHEELS_ENV: str(wheels), "PYTHONUNBUFFERED": "1"}


def run_blocked(args: list[str], wheels: Path, quiet: bool = False) -> subprocess.CompletedProcess:
    """`python ARGS` in the blocked interpreter (output streamed through, or captured when quiet)."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=blocked_env(wheels), capture_output=quiet)


def preflight(carry: Path = CARRY, store: Path | None = None, dry_run: bool = False) -> int:
    """The checks of the module docstring; prints each and returns the number that failed (0: the GPU run can
    start)."""
    wheels, store = carry / "wheels", store or carry / "store"
    for needed in (wheels, store):
        if not needed.exists():
            print(f"FAIL {needed} is missing: run 'bash benchmarks/gpu_check.sh --prepare' first")
            return 1
    failed = 0

    def report(ok: bool, what: str) -> None:
        nonlocal failed
        failed += not ok
        print(("ok   " if ok else "FAIL ") + what, flush=True)

    problems = wheel_problems(wheels, machine_packages())
    report(not problems, f"{len(carried_wheels(wheels))} carried wheels install on CPython 3.12 manylinux x86_64 "
                         "with every requirement met" + "".join(f"\n       {p}" for p in problems))
    size = tree_bytes(carry)
    report(size <= TREE_LIMIT - TREE_MARGIN, f"working tree and carry: {size / 2**20:.1f} MiB (a device call takes "
                                             f"{TREE_LIMIT / 2**20:.0f} MiB; {TREE_MARGIN / 2**20:.0f} MiB kept free)"
           + ("" if store.resolve().is_relative_to(carry.resolve()) else f"; {store} is not carried, not counted"))
    probe = run_blocked(["-c", "import pydantic"], wheels, quiet=True)
    report(probe.returncode != 0, "the blocked interpreter refuses pydantic (the GPU machine has none)")
    plan = run_blocked(["benchmarks/gpu_check.py", "--plan", "--store", str(store), "--preset", "paper",
                        "--device", "cpu"], wheels)
    report(plan.returncode == 0, "the check's imports and every stage's paper-preset dataset, with only the GPU "
                                 "machine's packages and the carried wheels")
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="talkface-gpu-dry-run-") as out:
            run = run_blocked(["benchmarks/gpu_check.py", "--store", str(store), *DRY_RUN, "--out-dir", out], wheels)
            rows = [json.loads(line) for line in (Path(out) / "gpu_check.jsonl").read_text().splitlines()]
            bad = [r for r in rows if r.get("status") not in (None, "ok")]
            report(run.returncode == 0 and not bad, "the whole check on the CPU (small preset, 2 steps) in the "
                                                    f"blocked interpreter: {len(rows)} rows"
                   + "".join(f"\n       {r.get('system')}/{r.get('stage', '')}: {r.get('error')}" for r in bad))
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="wheels and a store into the carry folder")
    p.add_argument("--carry", type=Path, default=CARRY)
    p.add_argument("--wheels-only", action="store_true", help="no store (the tests bring their own)")
    f = sub.add_parser("preflight", help="check the carry and the check's import path with the machine's packages")
    f.add_argument("--carry", type=Path, default=CARRY)
    f.add_argument("--store", type=Path, default=None, help="default: CARRY/store")
    f.add_argument("--dry-run", action="store_true", help="also run the whole check on the CPU, briefly")
    args = ap.parse_args(argv)
    if args.command == "prepare":
        prepare(args.carry, args.wheels_only)
        return 0
    failed = preflight(args.carry, args.store, args.dry_run)
    print("preflight passed" if not failed else f"preflight: {failed} check(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
