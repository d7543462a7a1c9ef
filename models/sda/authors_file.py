"""Reading the authors' released Vougioukas et al. model files (`grid.dat`, `timit.dat`, `crema.dat`, linked from the
DinoMan/speech-driven-animation README) without running their pickles.

The files are whole `torch.save` pickles of a dict (their `sda/sda.py`, `VideoAnimator.__init__`, reads 14 keys):
the state dicts `encoder` (audio encoder + content GRU), `encoder_id` and `generator`, and the settings `mean_face`
(a numpy array), `img_size`, `audio_rate`, `video_rate`, `audio_feat_len`, `audio_feat_samples`, `id_enc_dim`,
`rnn_gen_dim`, `aud_enc_dim`, `aux_latent`, `sequential_noise`. `read_dat` loads them with
`torch.load(weights_only=True)`: torch's restricted unpickler, which builds tensors and primitive containers only,
with exactly the numpy globals a pickled array needs allow-listed (under numpy 1's and numpy 2's module names).
Any other global (a function or class the pickle would call) is refused before anything runs. Pure torch + numpy.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from models.weights import Released, matched_state

KEYS = ("encoder", "encoder_id", "generator", "mean_face", "img_size", "audio_rate", "video_rate", "audio_feat_len",
        "audio_feat_samples", "id_enc_dim", "rnn_gen_dim", "aud_enc_dim", "aux_latent", "sequential_noise")
LFS_POINTER = b"version https://git-lfs"


def _numpy_globals() -> list:
    """What unpickling a numpy array or scalar calls, each also under numpy 1's module name (the 2019 files)."""
    try:
        from numpy._core import multiarray  # numpy 2
    except ImportError:  # numpy 1.26
        from numpy.core import multiarray

    dtypes = [type(np.dtype(t)) for t in ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
                                           "uint8", "bool")]
    return [np.ndarray, np.dtype, *dtypes, multiarray._reconstruct, multiarray.scalar,
            (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
            (multiarray.scalar, "numpy.core.multiarray.scalar")]


def read_dat(path: Path) -> dict:
    """The dict of one of the authors' `.dat` files, on the CPU: state dicts of tensors, `mean_face` a numpy array.

    Raises FileNotFoundError when `path` is missing; ValueError when it is a Git LFS pointer (the repository's
    placeholder, not the model), when its pickle names any global other than the allow-listed numpy ones (the
    message names the global; nothing of it ran), when it is not a torch file, or when one of `KEYS` is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Vougioukas et al. model file not found: {path}")
    with path.open("rb") as f:
        if f.read(len(LFS_POINTER)) == LFS_POINTER:
            raise ValueError(f"{path} is a Git LFS pointer, not the model: download the file itself (the "
                             "DinoMan/speech-driven-animation README links it on Google Drive)")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch's UnpicklingError and the like; the file is the user's
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # torch: "Unsupported global: GLOBAL io.open was not ..."
        what = f"its pickle calls {found.group(1)}, which is not a tensor or numpy array" if found else str(exc)[:300]
        raise ValueError(f"{path}: refused, not loaded ({what}); talkface reads the authors' files with torch's "
                         "weights-only unpickler and never runs their code") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected the authors' dict of state dicts and settings, got {type(state).__name__}")
    missing = [k for k in KEYS if k not in state]
    if missing:
        raise ValueError(f"{path}: not a Vougioukas et al. model file: no {', '.join(missing)}")
    return state


_P = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
# {state dict of the .dat: [(the authors' key pattern, talkface key from its match)]}: their module tree
# `rnn_audio.RNN` (`encoder.cl`, `encoder.activations`, `rnn`), `encoder_image.Encoder` (`cl`) and
# `img_generator.Generator` (`rnn_noise`, `dcl`: the projection, four `UnetBlock`s, the RGB deconvolution)
RULES = {
    "encoder": [(rf"encoder\.cl\.([0-4])\.(weight|bias)", lambda m: f"audio_encoder.layers.{m[1]}.0.{m[2]}"),
                (r"encoder\.cl\.5\.(weight|bias)", lambda m: f"audio_encoder.code.0.{m[1]}"),
                (rf"encoder\.activations\.([0-4])\.0\.{_P}", lambda m: f"audio_encoder.layers.{m[1]}.1.{m[2]}"),
                (r"rnn\.((weight|bias)_(ih|hh)_l\d+)", lambda m: f"content_rnn.{m[1]}")],
    "encoder_id": [(r"cl\.([0-4])\.0\.weight", lambda m: f"identity_encoder.layers.{m[1]}.0.weight"),
                   (rf"cl\.([0-4])\.1\.{_P}", lambda m: f"identity_encoder.layers.{m[1]}.1.{m[2]}"),
                   (r"cl\.5\.0\.weight", lambda m: "identity_encoder.code.0.weight")],
    "generator": [(r"rnn_noise\.((weight|bias)_(ih|hh)_l0)", lambda m: f"noise_rnn.{m[1]}"),
                  (r"dcl\.0\.0\.weight", lambda m: "project.0.weight"),
                  (rf"dcl\.0\.1\.{_P}", lambda m: f"project.1.{m[1]}"),
                  (r"dcl\.([1-4])\.dcl1\.weight", lambda m: f"blocks.{int(m[1]) - 1}.merge.0.weight"),
                  (rf"dcl\.([1-4])\.activation1\.0\.{_P}", lambda m: f"blocks.{int(m[1]) - 1}.merge.1.{m[2]}"),
                  (r"dcl\.([1-4])\.dcl2\.weight", lambda m: f"blocks.{int(m[1]) - 1}.up.0.weight"),
                  (rf"dcl\.([1-4])\.activation2\.0\.{_P}", lambda m: f"blocks.{int(m[1]) - 1}.up.1.{m[2]}"),
                  (r"dcl\.5\.weight", lambda m: "to_rgb.weight")],
}


def _mapped_key(part: str, key: str) -> str | None:
    """talkface `SDAGenerator` key of the authors' key `key` of state dict `part` (None: not one of theirs)."""
    for pattern, target in RULES[part]:
        m = re.fullmatch(pattern, key)
        if m:
            return target(m)
    return None


def generator_config(state: dict):
    """`SDAGeneratorConfig` of a `read_dat` dict: sizes from its settings and tensor shapes. Raises ValueError for
    settings talkface's generator does not have (another window or frame rate, an audio code unlike the content
    GRU's width, a non-tuple image size)."""
    from models.sda.generator import SDAGeneratorConfig

    if round(float(state["audio_feat_len"]) * 1000) != 200 or int(state["video_rate"]) != 25:
        raise ValueError(f"the model hears {state['audio_feat_len']} s windows at {state['video_rate']} fps; "
                         "talkface's generator takes 0.2 s windows at 25 fps")
    if int(state["aud_enc_dim"]) != int(state["rnn_gen_dim"]):
        raise ValueError(f"audio code {state['aud_enc_dim']} != content GRU width {state['rnn_gen_dim']}: talkface's "
                         "generator has one width for both")
    layers = sum(1 for k in state["encoder"] if re.fullmatch(r"rnn\.weight_ih_l\d+", k))
    return SDAGeneratorConfig(
        image_size=tuple(int(v) for v in state["img_size"]), ngf=int(state["encoder_id"]["cl.0.0.weight"].shape[0]),
        id_size=int(state["id_enc_dim"]), content_size=int(state["rnn_gen_dim"]), noise_size=int(state["aux_latent"]),
        audio_channels=int(state["encoder"]["encoder.cl.0.weight"].shape[0]), audio_rate=int(state["audio_rate"]),
        content_layers=layers, noise="gru" if state["sequential_noise"] else "white")


def generator_state(state: dict, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The three state dicts of a `read_dat` dict as one state dict of talkface's `SDAGenerator` `model` (built from
    `generator_config`), checked by `models.weights.matched_state`. Raises ValueError (AuthorsKeyError) naming a key
    that is unknown, missing, left over or of another shape."""
    mapped, names = {}, {}
    for part in ("encoder", "encoder_id", "generator"):
        for key, value in state[part].items():
            ours = _mapped_key(part, key.removeprefix("module."))
            if ours is None:
                raise ValueError(f"{part}: key {key} is not in the authors' module tree")
            mapped[ours], names[ours] = value, f"{part}.{key}"
    return matched_state(mapped, names, model, "Vougioukas et al. generator")


# the three released files by name (DinoMan/speech-driven-animation README): alias suffix, dataset trained on
RELEASES = {"grid": ("grid", "grid"), "timit": ("timit", "tcd_timit"), "crema": ("crema", "crema_d")}


def import_released(files: Sequence[Path], basics: Path | None = None) -> Released:
    """One of the authors' `.dat` files as a `models.weights.Released` of the `sda` stage for their protocol
    (`authors_protocol.AuthorsSDATalker`): the generator's state (`generator_state`) at its config
    (`generator_config`), and the file's `mean_face` float64 (68, 2) in extra. Alias `authors-grid`,
    `authors-timit` or `authors-crema` by the file's name (`authors` for another name; trained_on "unknown").
    Raises ValueError for more than one file, for `basics` (ATVGnet's), for a mean face that is not (68, 2), and as
    `read_dat`, `generator_config` and `generator_state`."""
    from models.sda.authors_protocol import PROTOCOL
    from models.sda.generator import SDAGenerator

    if basics is not None:
        raise ValueError("basics are ATVGnet's constants: the Vougioukas et al. file carries its own mean face")
    if len(files) != 1:
        raise ValueError(f"give one .dat file (grid.dat, timit.dat or crema.dat), got {len(files)}")
    path = Path(files[0])
    state = read_dat(path)
    mean_face = np.asarray(state["mean_face"], np.float64)
    if mean_face.shape != (68, 2):
        raise ValueError(f"{path}: mean_face has shape {mean_face.shape}, not the (68, 2) landmarks their "
                         "alignment reads")
    cfg = generator_config(state)
    generator = generator_state(state, SDAGenerator(cfg))
    suffix, trained_on = RELEASES.get(path.stem.lower(), (None, "unknown"))
    return Released(stages={"sda": {"modules": {"generator": generator}, "config": {"generator": cfg.to_dict()},
                                    "extra": {"protocol": PROTOCOL, "mean_face": torch.from_numpy(mean_face)}}},
                    alias=f"authors-{suffix}" if suffix else "authors", trained_on=trained_on)
