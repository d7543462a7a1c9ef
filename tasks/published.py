"""The seed papers' published test-split numbers (DESIGN "Metrics") and a table of a run's scores beside them.

Sources (the values as DESIGN lists them): Chen, Maddox, Duan, Xu, CVPR 2019 (ATVGnet); Chen, Li, Maddox, Duan, Xu,
ECCV 2018 ("Lip Movements Generation at a Glance"); Vougioukas, Petridis, Pantic, IJCV 2019 ("Realistic
Speech-Driven Facial Animation with GANs"); Zheng et al. 2020. LMD in pixels of the papers' crops, PSNR
in dB, SSIM and CPBD unitless, WER in %, AV offset in frames, AV confidence unitless, blinks per second and
median blink duration in seconds.
"""
from __future__ import annotations

import math

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
    "Chen et al. 2018": {"grid": {"lmd": 1.18, "ssim": 0.73, "psnr": 29.89, "cpbd": 0.175}},
    "Vougioukas et al. 2019": {
        "grid": {"psnr": 27.100, "ssim": 0.818, "cpbd": 0.268, "wer": 23.1, "av_offset": 1, "av_confidence": 7.4,
                 "blinks_per_s": 0.45, "blink_duration_s": 0.36},
    },
    "Zheng et al. 2020": {"lrw": {"lmd": 1.09, "psnr": 30.15, "ssim": 0.90}},
}


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
