"""The seed papers' published test-split numbers (DESIGN "Metrics") and a table of a run's scores beside them.

Sources (the values as DESIGN lists them): Chen, Maddox, Duan, Xu, CVPR 2019 (ATVGnet); Chen, Li, Maddox, Duan, Xu,
ECCV 2018 ("Lip Movements Generation at a Glance"); Vougioukas, Petridis, Pantic, IJCV 2019 ("Realistic
Speech-Driven Facial Animation with GANs"); Zheng et al. 2020. LMD in pixels of the papers' crops, PSNR
in dB, SSIM and CPBD unitless, WER in %, AV offset in frames, AV confidence unitless, blinks per second and
median blink duration in seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# metric -> (display name, better: "lower" | "higher" | "closer to real")
METRICS = {
    "lmd": ("LMD (mouth)", "lower"),
    "psnr": ("PSNR (dB)", "higher"),
    "ssim": ("SSIM", "higher"),
    "cpbd": ("CPBD", "higher"),
    "wer": ("WER (%)", "lower"),
    "av_offset": ("AV offset (frames)", "closer to 0"),
    "av_confidence": ("AV confidence", "higher"),
    "blinks_per_s": ("blinks / s", "closer to real"),
    "blink_duration_s": ("blink duration (s)", "closer to real"),
    "fps": ("inference frames / s", "higher"),
}

PUBLISHED: dict[str, dict[str, dict[str, float]]] = {  # paper -> dataset -> metric -> value
    "ATVGnet (Chen et al. 2019)": {
        "grid": {"lmd": 1.29, "ssim": 0.83, "psnr": 32.15},
        "lrw": {"lmd": 1.37, "ssim": 0.81, "psnr": 30.91},
    },
    "Chen et al. 2018": {  # Tab. 3, full model
        "grid": {"lmd": 1.18, "ssim": 0.73, "psnr": 29.89, "cpbd": 0.175},
        "ldc": {"lmd": 1.82, "ssim": 0.57, "psnr": 28.87, "cpbd": 0.172},
        "lrw": {"lmd": 1.92, "ssim": 0.53, "psnr": 28.65, "cpbd": 0.075},
    },
    "Vougioukas et al. 2019": {
        "grid": {"psnr": 27.100, "ssim": 0.818, "cpbd": 0.268, "wer": 23.1, "av_offset": 1, "av_confidence": 7.4,
                 "blinks_per_s": 0.45, "blink_duration_s": 0.36},
    },
    "Zheng et al. 2020": {"lrw": {"lmd": 1.09, "psnr": 30.15, "ssim": 0.90}},
}




@dataclass(frozen=True)
class PublishedTable:
    """One of a paper's own tables, for printing beside a run of the registered system it belongs to.

    system: the registry name; title: what the paper calls it; dataset: talkface's dataset name ("ldc": the paper's
    LDC set, no adapter of ours); metrics: METRICS keys, the table's columns in the paper's order; rows: {label:
    {metric: value}} in the paper's order (a missing value printed as "–")."""

    system: str
    title: str
    dataset: str
    metrics: tuple[str, ...]
    rows: dict[str, dict[str, float]]


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
TABLES: tuple[PublishedTable, ...] = (
    *(PublishedTable("lipgan", f"Chen et al. 2018, Tab. 3 ({d.upper()})", d, ("lmd", "ssim", "psnr", "cpbd"),
                     {label: _lsp(v) for label, v in rows.items()}) for d, rows in _CHEN2018_TAB3.items()),
    PublishedTable("lipgan", "Chen et al. 2018, Tab. 2 (GRID ablations)", "grid", ("lmd", "ssim", "psnr", "cpbd"),
                   {label: _lsp(v) for label, v in _CHEN2018_TAB2.items()}),
)


def tables_markdown(system: str, scores: dict[str, float], dataset: str) -> str:
    """The paper tables of `system` on `dataset` (`TABLES`), each as markdown with "this run" as its first row and
    "real frames (this run)" (CPBD of the real frames, LMD 0) second beside a table's "ground truth" row when
    `scores` has cpbd_real; "" when the system has none for the dataset."""
    out = []
    for table in (t for t in TABLES if t.system == system and t.dataset == dataset):
        cell = lambda v: "–" if v is None or math.isnan(v) else f"{v:.3f}"  # noqa: E731
        rows = [{"": "this run", **{METRICS[k][0]: cell(scores.get(k)) for k in table.metrics}}]
        if "cpbd_real" in scores and "ground truth" in table.rows:
            real = {"lmd": 0.0, "cpbd": scores["cpbd_real"]}
            rows.append({"": "real frames (this run)", **{METRICS[k][0]: cell(real.get(k)) for k in table.metrics}})
        rows += [{"": label, **{METRICS[k][0]: f"{v[k]:g}" if k in v else "–" for k in table.metrics}}
                 for label, v in table.rows.items()]
        out.append(f"{table.title}\n\n{markdown_table(rows)}")
    return "\n".join(out)


def comparison_rows(scores: dict[str, float], dataset: str, label: str = "this run") -> list[dict[str, str]]:
    """One row per metric that this run scored or a paper published for `dataset`: {"metric", label, <paper>: value
    or ""}. `scores` maps METRICS keys to floats (missing or NaN: shown as "—")."""
    papers = [p for p, by_dataset in PUBLISHED.items() if dataset in by_dataset]
    keys = [k for k in METRICS if k in scores or any(k in PUBLISHED[p][dataset] for p in papers)]
    rows = []
    for key in keys:
        value = scores.get(key)
        row = {"metric": METRICS[key][0], label: "—" if value is None or math.isnan(value) else f"{value:.3f}"}
        for paper in papers:
            published = PUBLISHED[paper][dataset].get(key)
            row[paper] = "" if published is None else f"{published:g}"
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
        p for p, by_dataset in PUBLISHED.items() if dataset in by_dataset]
    return [{c: row.get(c, "—") for c in columns} for row in merged.values()]


def leaderboard_markdown(scores: dict[str, dict[str, float]], dataset: str) -> str:
    """`leaderboard_rows` as a markdown table: the systems side by side, beside the papers' numbers."""
    rows = leaderboard_rows(scores, dataset)
    return markdown_table(rows) if rows else f"(no scores and no published numbers for {dataset})\n"
