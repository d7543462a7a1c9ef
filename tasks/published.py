"""The seed papers' published test-split numbers (DESIGN "Metrics") and a table of a run's scores beside them.

Sources (the values as DESIGN lists them): Chen, Maddox, Duan, Xu, CVPR 2019 (ATVGnet); Chen, Li, Maddox, Duan, Xu,
ECCV 2018 ("Lip Movements Generation at a Glance"); Vougioukas, Petridis, Pantic, IJCV 2019 ("Realistic
Speech-Driven Facial Animation with GANs", Tab. 4, 5 and 6 as specs/vougioukas2019-sda.md §6 gives them); Zheng et
al. 2020. LMD in pixels of the papers' crops, PSNR in dB, SSIM and CPBD unitless, WER in %, AV offset in frames, AV
confidence unitless, blinks per second and median blink duration in seconds.

Units: published values are stored as the papers print them; a run's scores come in evaluation's units
(`tasks.evaluation`) and are multiplied by `DISPLAY_SCALE` for display, so WER, a fraction 0–1 in the scores, prints
in % beside the papers' %. `<metric>_real` keys are the same metric on the real frames of the test split (the
"ground truth" rows of the papers' tables; Vougioukas et al.'s Tab. 4 for blinks). The paper's ACD is printed only
in its own tables, with a note: it is ×10⁻⁴ OpenFace embedding distance, talkface's (the leaderboard's) dlib's 128-d
descriptor distance, not comparable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

# metric -> (display name, better: "lower" | "higher" | "closer to 0" | "closer to real" | "reference": real frames)
METRICS = {
    "lmd": ("LMD (mouth)", "lower"),
    "lmd_a2l": ("LMD of the predicted landmarks (A2L, AT-net)", "lower"),
    "psnr": ("PSNR (dB)", "higher"),
    "ssim": ("SSIM", "higher"),
    "cpbd": ("CPBD", "higher"),
    "cpbd_real": ("CPBD, real frames", "reference"),
    "acd": ("ACD (dlib descriptor distance)", "lower"),
    "wer": ("WER (%)", "lower"),
    "wer_real": ("WER (%), real frames", "reference"),
    "av_offset": ("AV offset (frames)", "closer to 0"),
    "av_confidence": ("AV confidence", "higher"),
    "blinks_per_s": ("blinks / s", "closer to real"),
    "blinks_per_s_real": ("blinks / s, real frames", "reference"),
    "blink_duration_s": ("blink duration (s)", "closer to real"),
    "blink_duration_s_real": ("blink duration (s), real frames", "reference"),
    "blinks_per_s_peaks": ("blinks / s (peak detector)", "closer to real"),
    "blinks_per_s_peaks_real": ("blinks / s (peak detector), real frames", "reference"),
    "blink_duration_s_peaks": ("blink duration (s) (peak detector)", "closer to real"),
    "blink_duration_s_peaks_real": ("blink duration (s) (peak detector), real frames", "reference"),
    "fps": ("inference frames / s", "higher"),
}
# a run's score × this = the value in the unit METRICS and the papers print (evaluation gives WER as a fraction)
DISPLAY_SCALE = {"wer": 100.0, "wer_real": 100.0}


def display(key: str, value: float) -> float:
    """A run's score of metric `key` in the unit printed beside the papers (`DISPLAY_SCALE`)."""
    return value * DISPLAY_SCALE.get(key, 1.0)


PUBLISHED: dict[str, dict[str, dict[str, float]]] = {  # paper -> dataset -> metric -> value
    "ATVGnet (Chen et al. 2019)": {
        "grid": {"lmd": 1.29, "ssim": 0.83, "psnr": 32.15},
        "lrw": {"lmd": 1.37, "ssim": 0.81, "psnr": 30.91},
    },
    "Chen et al. 2018": {  # Tab. 3, full model; cpbd_real: its ground-truth row
        "grid": {"lmd": 1.18, "ssim": 0.73, "psnr": 29.89, "cpbd": 0.175, "cpbd_real": 0.141},
        "ldc": {"lmd": 1.82, "ssim": 0.57, "psnr": 28.87, "cpbd": 0.172, "cpbd_real": 0.211},
        "lrw": {"lmd": 1.92, "ssim": 0.53, "psnr": 28.65, "cpbd": 0.075, "cpbd_real": 0.068},
    },
    "Vougioukas et al. 2019": {  # Tab. 6, the proposed model (WER on GRID only); the real frames: Tab. 5's
        # ground-truth row (GRID CPBD, WER of the lip reader) and Tab. 4 (blinks of real videos, every dataset)
        "grid": {"psnr": 27.100, "ssim": 0.818, "cpbd": 0.268, "cpbd_real": 0.276, "wer": 23.1, "wer_real": 21.76,
                 "av_offset": 1, "av_confidence": 7.4, "blinks_per_s_peaks": 0.45, "blinks_per_s_peaks_real": 0.39,
                 "blink_duration_s_peaks": 0.36, "blink_duration_s_peaks_real": 0.4},
        "tcd_timit": {"psnr": 24.243, "ssim": 0.730, "cpbd": 0.308, "av_offset": 1, "av_confidence": 5.5,
                      "blinks_per_s_peaks": 0.19, "blinks_per_s_peaks_real": 0.28, "blink_duration_s_peaks": 0.33,
                      "blink_duration_s_peaks_real": 0.2},
        "crema_d": {"psnr": 23.565, "ssim": 0.700, "cpbd": 0.216, "av_offset": 2, "av_confidence": 5.5,
                    "blinks_per_s_peaks": 0.25, "blinks_per_s_peaks_real": 0.26, "blink_duration_s_peaks": 0.26,
                    "blink_duration_s_peaks_real": 0.36},
        "lrw": {"psnr": 23.077, "ssim": 0.757, "cpbd": 0.260, "av_offset": 1, "av_confidence": 7.4,
                "blinks_per_s_peaks": 0.52, "blinks_per_s_peaks_real": 0.53, "blink_duration_s_peaks": 0.28,
                "blink_duration_s_peaks_real": 0.32},
    },
    "Zheng et al. 2020": {  # Tab. II (LRW) and Tab. III (GRID, a model trained on LRW only), the proposed model
        "lrw": {"lmd": 1.09, "psnr": 30.15, "ssim": 0.90},
        "grid": {"lmd": 0.88, "psnr": 31.50, "ssim": 0.96},
    },
}
# (paper, dataset) -> the dataset the paper trained on when it is another: its numbers are a cross-dataset test
TRAINED_ON = {("Zheng et al. 2020", "grid"): "lrw"}


def paper_label(paper: str, dataset: str) -> str:
    """A paper's column title for `dataset`: its name, with "(trained on LRW)" where its numbers on `dataset` come
    from a model trained on another dataset (`TRAINED_ON`)."""
    other = TRAINED_ON.get((paper, dataset))
    return f"{paper} (trained on {other.upper()})" if other else paper




@dataclass(frozen=True)
class PublishedTable:
    """One of a paper's own tables, for printing beside a run of the registered system it belongs to.

    system: the registry name; title: what the paper calls it; dataset: talkface's dataset name ("ldc": the paper's
    LDC set, no adapter of ours), the one its rows were tested on; trained_on: the dataset its models were trained
    on when that is another (a cross-dataset table; None: the same); metrics: METRICS keys, the table's columns in
    the paper's order; rows: {label: {metric: value}} in the paper's order, values as the paper prints them (a
    missing value printed as "–", inf as "∞"); real: the table measures real videos, so the run's row is its real-frame scores (`<metric>_real`);
    headers: column titles other than METRICS' (metric -> title); notes: lines printed under the table."""

    system: str
    title: str
    dataset: str
    metrics: tuple[str, ...]
    rows: dict[str, dict[str, float]]
    real: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    trained_on: str | None = None


def _lsp(values: str) -> dict[str, float]:
    """"LMD / SSIM / PSNR / CPBD" as Chen et al. 2018 print them ("–": not given) -> {metric: value}."""
    return {k: float(v) for k, v in zip(("lmd", "ssim", "psnr", "cpbd"), values.split("/")) if v.strip() != "–"}


_CHEN2018_TAB3 = {  # Chen, Li, Maddox, Duan, Xu, ECCV 2018, Tab. 3: LMD / SSIM / PSNR / CPBD per dataset
    "grid": {"ground truth": "0 / – / – / 0.141", "Vondrick et al. 2016": "2.38 / .60 / 28.45 / .129",
             "Chung et al. 2017": "1.35 / .74 / 29.36 / .016", "full model": "1.18 / .73 / 29.89 / .175"},
    "ldc": {"ground truth": "0 / – / – / 0.211", "Vondrick et al. 2016": "2.34 / .75 / 27.96 / .160",
            "Chung et al. 2017": "2.13 / .50 / 28.22 / .010", "full model": "1.82 / .57 / 28.87 / .172"},
    "lrw": {"ground truth": "0 / – / – / 0.068", "Vondrick et al. 2016": "3.28 / .34 / 28.03 / .082",
            "Chung et al. 2017": "2.25 / .46 / 28.06 / .083", "full model": "1.92 / .53 / 28.65 / .075"},
}
_CHEN2018_TAB2 = {  # the GRID ablations, Tab. 2 (the full model's PSNR is 29.98 here, 29.89 in Tab. 3)
    "(a) no GAN": "1.24 / .77 / 29.36 / .01", "(b) no pixel loss": "1.31 / .71 / 29.79 / .18",
    "(c) no perceptual loss": "1.38 / .72 / 29.66 / .17", "(d) no correlation loss": "1.31 / .70 / 29.80 / .21",
    "(e) full model": "1.18 / .73 / 29.98 / .18", "(f) non-derivative correlation": "1.96 / .52 / 28.6 / .22",
    "(g) two-stream D": "1.39 / .68 / 29.59 / .19", "(h) two-stream D, no correlation": "1.42 / .59 / 29.46 / .18",
    "(i) three-stream D, frame differences": "1.40 / .66 / 29.51 / .21",
}

SDA_COLUMNS = ("psnr", "ssim", "cpbd", "acd", "wer", "av_offset", "av_confidence", "blinks_per_s_peaks",
               "blink_duration_s_peaks")  # Vougioukas et al. 2019, Tab. 5 and 6, in the paper's order (blinks by
# the authors' peak detector, as evaluation's `_peaks` scores)


def _sda(values: str) -> dict[str, float]:
    """"PSNR / SSIM / CPBD / ACD / WER / AV offset / AV conf / blinks/s / blink s" as Vougioukas et al. 2019 print them
    in Tab. 5 and 6 ("–": not given, "∞": infinite) -> {metric: value}."""
    parts = [v.strip() for v in values.split("/")]
    if len(parts) != len(SDA_COLUMNS):
        raise ValueError(f"expected {len(SDA_COLUMNS)} values, got {values!r}")
    return {k: math.inf if v == "∞" else float(v) for k, v in zip(SDA_COLUMNS, parts) if v != "–"}


_SDA_TAB4 = {  # Vougioukas et al. 2019, Tab. 4: their blink detector on real videos, blinks/s and median blink s
    "grid": ("GRID", 0.39, 0.4), "tcd_timit": ("TCD-TIMIT", 0.28, 0.2), "crema_d": ("CREMA-D", 0.26, 0.36),
    "lrw": ("LRW", 0.53, 0.32),
}
_SDA_TAB5 = {  # Vougioukas et al. 2019, Tab. 5: the GRID ablations
    "ground truth": "∞ / 1.00 / .276 / 0.98 / 21.76 / 1 / 7.0 / .39 / .41",
    "w/o L_adv": "28.467 / .855 / .210 / 1.92 / 26.6 / 1 / 7.1 / .02 / .16",
    "w/o L1": "26.516 / .805 / .270 / 1.03 / 56.4 / 1 / 6.3 / .41 / .32",
    "w/o frame D": "26.474 / .804 / .252 / 1.96 / 23.2 / 1 / 7.3 / .16 / .28",
    "w/o sync D": "27.548 / .829 / .263 / 1.19 / 27.8 / 1 / 7.2 / .21 / .32",
    "w/o sequence D": "27.590 / .829 / .259 / 1.13 / 27.0 / 1 / 7.4 / .03 / .16",
    "full model": "27.100 / .818 / .268 / 1.47 / 23.1 / 1 / 7.4 / .45 / .36",
}
_SDA_TAB6 = {  # Vougioukas et al. 2019, Tab. 6: the proposed model per dataset (WER on GRID only), ATVGNet on LRW
    "grid": {"proposed model": "27.100 / .818 / .268 / 1.47 / 23.1 / 1 / 7.4 / .45 / .36"},
    "tcd_timit": {"proposed model": "24.243 / .730 / .308 / 1.76 / – / 1 / 5.5 / .19 / .33"},
    "crema_d": {"proposed model": "23.565 / .700 / .216 / 1.40 / – / 2 / 5.5 / .25 / .26"},
    "lrw": {"proposed model": "23.077 / .757 / .260 / 1.53 / – / 1 / 7.4 / .52 / .28",
            "ATVGNet (Chen et al. 2019), as measured there": "20.107 / .743 / .189 / 2.14 / – / 2 / 7.0 / 0 / 0"},
}
ZHENG_COLUMNS = ("lmd_a2l", "lmd", "psnr", "ssim")  # Zheng et al. 2020, Tab. IV and V: A2L LMD | L2F LMD/PSNR/SSIM


def _values(columns: tuple[str, ...], values: str) -> dict[str, float]:
    """"a / b / c" in the order of `columns` ("–": not given) -> {metric: value}."""
    parts = [v.strip() for v in values.split("/")]
    if len(parts) != len(columns):
        raise ValueError(f"expected {len(columns)} values, got {values!r}")
    return {k: float(v) for k, v in zip(columns, parts) if v != "–"}


_ZHENG_TAB2 = {  # Zheng et al. 2020, Tab. II (LRW): LMD / PSNR / SSIM
    "Chung et al. 2017": "1.35 / 29.36 / 0.74", "Zhou et al. 2019": "– / 26.80 / 0.88",
    "Wiles et al. 2018": "1.60 / 29.82 / 0.75", "Chen et al. 2019 (ATVGnet)": "1.37 / 30.27 / 0.78",
    "proposed model": "1.09 / 30.15 / 0.90",
}
_ZHENG_TAB3 = {  # Tab. III (GRID, every model trained on LRW only): LMD / PSNR / SSIM
    "Chung et al. 2017": "1.44 / 29.87 / 0.76", "Wiles et al. 2018": "1.48 / 29.39 / 0.80",
    "Chen et al. 2019 (ATVGnet)": "1.29 / 32.15 / 0.83", "proposed model": "0.88 / 31.50 / 0.96",
}
_ZHENG_TAB4 = {  # Tab. IV (LRW ablations): A2L LMD | L2F LMD / PSNR / SSIM
    "baseline": "3.43 / 1.41 / 29.43 / 0.83", "+WD": "3.08 / 1.16 / 29.61 / 0.82",
    "+TR": "3.27 / 1.28 / 30.04 / 0.87", "+WD+TR": "3.03 / 1.09 / 30.15 / 0.90",
}
_ZHENG_TAB5 = {  # Tab. V (LRW, reference-landmark settings; points kept): the same columns
    "w/o eyes & nose (47)": "3.09 / 1.12 / 30.24 / 0.89", "w/o jaw (51)": "3.13 / 1.13 / 29.97 / 0.87",
    "w/o part of lip (58)": "3.31 / 1.15 / 29.71 / 0.87", "w/o upper lip (60)": "3.01 / 1.86 / 28.33 / 0.74",
    "w/o right lip (60)": "3.05 / 2.03 / 28.16 / 0.71", "frontal (68)": "2.92 / 1.02 / 30.27 / 0.93",
    "profile (68)": "3.19 / 1.21 / 30.01 / 0.87", "frontal + profile (68)": "3.06 / 1.12 / 30.14 / 0.90",
}
_ZHENG_CHEN_NOTE = ("The paper's ATVGnet row mixes ATVGnet's LMD with its ATVG-ND PSNR and SSIM (ATVGnet printed "
                    "1.37 / 30.91 / 0.81 on LRW).")
_ZHENG_LMD_NOTE = ("LMD in pixels of each side's crops (the paper generates 256×256 frames; this run's face crops "
                   "are 128×128, so its pixels are twice as large). A2L LMD: the predicted landmarks against dlib's "
                   "on the real frames; this run's row takes the settings it was trained with (`--set "
                   "a2l.loss.use_word_detector=…`, `…landmark_subset=…`), frontal and profile rows are "
                   "`lmd_a2l_frontal`, `lmd_frontal`, … of the same run (|yaw| < 10°, > 30°).")
_ZHENG_CROSS_NOTE = ("Cross-dataset: the paper's rows are models trained on LRW only and tested on GRID "
                     "(`talkface benchmark --dataset lrw --raw-root LRW --test-dataset grid`).")

_ACD_HEADER = "ACD †"
_ACD_NOTE = ("† ACD: the paper's rows print the distance of OpenFace identity embeddings ×10⁴ (1.47 means "
             "1.47·10⁻⁴); this run's rows are distances of dlib's 128-d face descriptors, unscaled. Different "
             "embeddings: compare this run's rows with each other, not with the paper's.")
_WER_NOTE = ("WER in %, by each side's own lip reader (the paper's: LipNet; this run's: `models.lipreader`), so "
             "compare each with its real-frames row.")
_BLINK_NOTE = ("Blinks: the paper's by the authors' peak detector on their landmarks; this run's by the same "
               "detector (`tasks.metrics.peak_blinks`, height 0.072, distance 4) on dlib landmarks of the face "
               "views. The project's threshold detector (`blinks_per_s`) finds more and shorter blinks: "
               "benchmarks/blinks_grid.py.")

TABLES: tuple[PublishedTable, ...] = (
    *(PublishedTable("lipgan", f"Chen et al. 2018, Tab. 3 ({d.upper()})", d, ("lmd", "ssim", "psnr", "cpbd"),
                     {label: _lsp(v) for label, v in rows.items()}) for d, rows in _CHEN2018_TAB3.items()),
    PublishedTable("lipgan", "Chen et al. 2018, Tab. 2 (GRID ablations)", "grid", ("lmd", "ssim", "psnr", "cpbd"),
                   {label: _lsp(v) for label, v in _CHEN2018_TAB2.items()}),
    *(PublishedTable("sda", f"Vougioukas et al. 2019, Tab. 4 (blinks of real {name} videos)", d,
                     ("blinks_per_s_peaks", "blink_duration_s_peaks"), {f"real {name} videos": {
                         "blinks_per_s_peaks": rate, "blink_duration_s_peaks": duration}}, real=True,
                     notes=(_BLINK_NOTE,))
      for d, (name, rate, duration) in _SDA_TAB4.items()),
    PublishedTable("sda", "Vougioukas et al. 2019, Tab. 5 (GRID ablations)", "grid", SDA_COLUMNS,
                   {label: _sda(v) for label, v in _SDA_TAB5.items()}, headers={"acd": _ACD_HEADER},
                   notes=(_ACD_NOTE, _WER_NOTE)),
    *(PublishedTable("sda", f"Vougioukas et al. 2019, Tab. 6 ({_SDA_TAB4[d][0]})", d, SDA_COLUMNS,
                     {label: _sda(v) for label, v in rows.items()}, headers={"acd": _ACD_HEADER},
                     notes=(_ACD_NOTE,) + ((_WER_NOTE,) if d == "grid" else ()))
      for d, rows in _SDA_TAB6.items()),
    PublishedTable("zheng", "Zheng et al. 2020, Tab. II (LRW)", "lrw", ("lmd", "psnr", "ssim"),
                   {label: _values(("lmd", "psnr", "ssim"), v) for label, v in _ZHENG_TAB2.items()},
                   notes=(_ZHENG_CHEN_NOTE,)),
    PublishedTable("zheng", "Zheng et al. 2020, Tab. III (GRID, trained on LRW)", "grid", ("lmd", "psnr", "ssim"),
                   {label: _values(("lmd", "psnr", "ssim"), v) for label, v in _ZHENG_TAB3.items()},
                   notes=(_ZHENG_CROSS_NOTE,), trained_on="lrw"),
    PublishedTable("zheng", "Zheng et al. 2020, Tab. IV (LRW ablations)", "lrw", ZHENG_COLUMNS,
                   {label: _values(ZHENG_COLUMNS, v) for label, v in _ZHENG_TAB4.items()},
                   headers={"lmd_a2l": "A2L LMD", "lmd": "L2F LMD"}, notes=(_ZHENG_LMD_NOTE,)),
    PublishedTable("zheng", "Zheng et al. 2020, Tab. V (LRW, reference landmarks)", "lrw", ZHENG_COLUMNS,
                   {label: _values(ZHENG_COLUMNS, v) for label, v in _ZHENG_TAB5.items()},
                   headers={"lmd_a2l": "A2L LMD", "lmd": "L2F LMD"}, notes=(_ZHENG_LMD_NOTE,)),
)
# the frames themselves against themselves: a "real frames (this run)" row shows these where the paper's
# "ground truth" row has the metric
_IDENTITY = {"lmd": 0.0, "psnr": math.inf, "ssim": 1.0}


def _run_cell(key: str, value: float | None) -> str:
    """A run's score as tables print it: in display units, 3 decimals; "–" when missing or NaN, "∞" when infinite."""
    if value is None or math.isnan(value):
        return "–"
    return "∞" if math.isinf(value) else f"{display(key, value):.3f}"


def _paper_cell(value: float | None) -> str:
    """A published value as the paper prints it (shortest form); "–" when not given."""
    if value is None:
        return "–"
    return "∞" if math.isinf(value) else f"{value:g}"


def tables_markdown(system: str, scores: dict[str, float], dataset: str, trained_on: str | None = None) -> str:
    """The paper tables of `system` on `dataset` (`TABLES`), each as markdown with "this run" as its first row and
    "real frames (this run)" second beside a table's "ground truth" row when `scores` has a `<metric>_real` of one
    of its columns (those, and LMD 0, PSNR ∞, SSIM 1 where the ground-truth row has them); a table of real videos
    (`real`) has only the real-frames row. Then the paper's rows and the table's notes. `scores` maps metric keys to
    floats in evaluation's units (WER a fraction; shown in %); a missing or NaN one prints "–". "" when the system
    has no table for the dataset. trained_on: the dataset the run trained on (None: `dataset`); a cross-dataset
    table (`PublishedTable.trained_on`) says so under it when the run trained on another."""
    out = []
    for table in (t for t in TABLES if t.system == system and t.dataset == dataset):
        header = {k: table.headers.get(k, METRICS[k][0]) for k in table.metrics}
        real = {k: scores[f"{k}_real"] for k in table.metrics if f"{k}_real" in scores}
        rows = [] if table.real else [{"": "this run", **{header[k]: _run_cell(k, scores.get(k))
                                                           for k in table.metrics}}]
        truth = table.rows.get("ground truth")
        if table.real or (real and truth is not None):
            real.update({k: v for k, v in _IDENTITY.items() if truth is not None and k in truth})
            rows.append({"": "real frames (this run)", **{header[k]: _run_cell(k, real.get(k))
                                                          for k in table.metrics}})
        rows += [{"": label, **{header[k]: _paper_cell(v.get(k)) for k in table.metrics}}
                 for label, v in table.rows.items()]
        notes = "".join(f"\n{note}\n" for note in table.notes)
        if (table.trained_on or dataset) != (trained_on or dataset):
            notes += (f"\nThis run was trained on {(trained_on or dataset).upper()}, the paper's rows on "
                      f"{(table.trained_on or dataset).upper()}: not the same setting.\n")
        out.append(f"{table.title}\n\n{markdown_table(rows)}{notes}")
    return "\n".join(out)


def comparison_rows(scores: dict[str, float], dataset: str, label: str = "this run") -> list[dict[str, str]]:
    """One row per metric that this run scored or a paper published for `dataset`: {"metric", label, <paper>: value
    or ""}. `scores` maps METRICS keys to floats in evaluation's units (WER a fraction, shown in % as the papers
    print it; missing or NaN: shown as "—"); `<metric>_real` rows are the real frames' (the papers' ground truth)."""
    papers = [p for p, by_dataset in PUBLISHED.items() if dataset in by_dataset]
    keys = [k for k in METRICS if k in scores or any(k in PUBLISHED[p][dataset] for p in papers)]
    rows = []
    for key in keys:
        value = scores.get(key)
        row = {"metric": METRICS[key][0],
               label: "—" if value is None or math.isnan(value) else f"{display(key, value):.3f}"}
        for paper in papers:
            published = PUBLISHED[paper][dataset].get(key)
            row[paper_label(paper, dataset)] = "" if published is None else f"{published:g}"
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Rows of equal keys as a markdown table (the first row's keys are the header; floats to 4 decimals)."""
    if not rows:
        return "(empty)\n"
    header = list(rows[0])
    cell = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(row[h]) for h in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def comparison_markdown(scores: dict[str, float], dataset: str, label: str = "this run") -> str:
    """`comparison_rows` as a markdown table."""
    rows = comparison_rows(scores, dataset, label)
    return markdown_table(rows) if rows else f"(no published numbers for {dataset})\n"


def leaderboard_rows(scores: dict[str, dict[str, float]], dataset: str) -> list[dict[str, str]]:
    """One row per metric that a system scored or a paper published for `dataset`: {"metric", "<system> (this
    run)" for each system, <paper>: value or ""}. `scores` maps system -> METRICS key -> float."""
    merged: dict[str, dict[str, str]] = {}
    for system, values in scores.items():
        for row in comparison_rows({k: v for k, v in values.items() if k in METRICS}, dataset,
                                   label=f"{system} (this run)"):
            merged.setdefault(row["metric"], {"metric": row["metric"]}).update(row)
    columns = ["metric", *(f"{s} (this run)" for s in scores)] + [
        paper_label(p, dataset) for p, by_dataset in PUBLISHED.items() if dataset in by_dataset]
    return [{c: row.get(c, "—") for c in columns} for row in merged.values()]


def leaderboard_markdown(scores: dict[str, dict[str, float]], dataset: str) -> str:
    """`leaderboard_rows` as a markdown table: the systems side by side, beside the papers' numbers."""
    rows = leaderboard_rows(scores, dataset)
    return markdown_table(rows) if rows else f"(no scores and no published numbers for {dataset})\n"
