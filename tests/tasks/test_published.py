"""The published numbers and the tables printed beside a run: Vougioukas et al. 2019 Tab. 4, 5 and 6 with the paper's
cells (specs/vougioukas2019-sda.md §6), a run's scores in the "this run" rows (WER from a fraction to %), "–" for
what a run did not score, one Tab. 4 and Tab. 6 per dataset; the leaderboard's WER and real-frame rows; Chen et al.
2018's tables unchanged."""
import math

import pytest

from tasks import published
from tasks.published import PUBLISHED, TABLES, leaderboard_markdown, leaderboard_rows, tables_markdown

SCORES = {  # a run's scores in evaluation's units (WER a fraction)
    "psnr": 26.5, "ssim": 0.8, "cpbd": 0.25, "cpbd_real": 0.27, "acd": 0.41, "wer": 0.3, "wer_real": 0.2,
    "av_offset": 1.0, "av_confidence": 5.0, "blinks_per_s_peaks": 0.3, "blink_duration_s_peaks": 0.28,
    "blinks_per_s_peaks_real": 0.6, "blink_duration_s_peaks_real": 0.16, "lmd": 1.5,
    "blinks_per_s": 0.9, "blinks_per_s_real": 1.1,  # the threshold detector's: not the paper's blink columns
}


def _table(markdown: str, title: str) -> dict[str, list[str]]:
    """One table of `tables_markdown`'s output as {row label: cells}, the header under ""."""
    block = markdown.split(title, 1)[1].split("\n\n")[1]
    lines = [line.strip("|").split("|") for line in block.splitlines() if not line.startswith("|---")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in lines}


def test_sda_tables_per_dataset():
    titles = {d: [t.title for t in TABLES if t.system == "sda" and t.dataset == d]
              for d in ("grid", "tcd_timit", "crema_d", "lrw")}
    assert titles["grid"] == ["Vougioukas et al. 2019, Tab. 4 (blinks of real GRID videos)",
                              "Vougioukas et al. 2019, Tab. 5 (GRID ablations)",
                              "Vougioukas et al. 2019, Tab. 6 (GRID)"]
    for d, name in (("tcd_timit", "TCD-TIMIT"), ("crema_d", "CREMA-D"), ("lrw", "LRW")):
        assert titles[d] == [f"Vougioukas et al. 2019, Tab. 4 (blinks of real {name} videos)",
                             f"Vougioukas et al. 2019, Tab. 6 ({name})"]
    assert tables_markdown("sda", SCORES, "ldc") == "" and tables_markdown("nobody", SCORES, "grid") == ""


def test_tab5_has_the_papers_cells_and_this_run():
    md = tables_markdown("sda", SCORES, "grid")
    tab5 = _table(md, "Tab. 5 (GRID ablations)")
    assert tab5[""] == ["PSNR (dB)", "SSIM", "CPBD", "ACD †", "WER (%)", "AV offset (frames)", "AV confidence",
                        "blinks / s (peak detector)", "blink duration (s) (peak detector)"]
    assert list(tab5)[1:] == ["this run", "real frames (this run)", "ground truth", "w/o L_adv", "w/o L1",
                              "w/o frame D", "w/o sync D", "w/o sequence D", "full model"]
    assert tab5["ground truth"] == ["∞", "1", "0.276", "0.98", "21.76", "1", "7", "0.39", "0.41"]
    assert tab5["w/o L1"] == ["26.516", "0.805", "0.27", "1.03", "56.4", "1", "6.3", "0.41", "0.32"]
    assert tab5["w/o sequence D"][7:] == ["0.03", "0.16"]
    assert tab5["full model"] == ["27.1", "0.818", "0.268", "1.47", "23.1", "1", "7.4", "0.45", "0.36"]
    # this run: WER 0.3 -> 30 %; the real frames: PSNR ∞ and SSIM 1 beside the ground truth, the *_real scores
    assert tab5["this run"] == ["26.500", "0.800", "0.250", "0.410", "30.000", "1.000", "5.000", "0.300", "0.280"]
    assert tab5["real frames (this run)"] == ["∞", "1.000", "0.270", "–", "20.000", "–", "–", "0.600", "0.160"]
    assert "† ACD: the paper's rows print the distance of OpenFace identity embeddings ×10⁴" in md


def test_tab4_is_the_runs_real_frames():
    tab4 = _table(tables_markdown("sda", SCORES, "grid"), "Tab. 4 (blinks of real GRID videos)")
    assert tab4 == {"": ["blinks / s (peak detector)", "blink duration (s) (peak detector)"],
                    "real frames (this run)": ["0.600", "0.160"],
                    "real GRID videos": ["0.39", "0.4"]}
    crema = _table(tables_markdown("sda", {}, "crema_d"), "Tab. 4 (blinks of real CREMA-D videos)")
    assert crema["real frames (this run)"] == ["–", "–"] and crema["real CREMA-D videos"] == ["0.26", "0.36"]
    assert _table(tables_markdown("sda", {}, "tcd_timit"), "Tab. 4")["real TCD-TIMIT videos"] == ["0.28", "0.2"]
    assert _table(tables_markdown("sda", {}, "lrw"), "Tab. 4")["real LRW videos"] == ["0.53", "0.32"]


def test_tab6_rows_per_dataset_and_missing_metrics():
    partial = {"psnr": 24.0, "ssim": float("nan")}  # a run without sync, reader or blinks
    grid = _table(tables_markdown("sda", partial, "grid"), "Tab. 6 (GRID)")
    assert grid["this run"] == ["24.000"] + ["–"] * 8
    assert "real frames (this run)" not in grid  # Tab. 6 has no ground-truth row
    assert grid["proposed model"] == ["27.1", "0.818", "0.268", "1.47", "23.1", "1", "7.4", "0.45", "0.36"]
    tcd = _table(tables_markdown("sda", partial, "tcd_timit"), "Tab. 6 (TCD-TIMIT)")
    assert tcd["proposed model"] == ["24.243", "0.73", "0.308", "1.76", "–", "1", "5.5", "0.19", "0.33"]
    crema = _table(tables_markdown("sda", partial, "crema_d"), "Tab. 6 (CREMA-D)")
    assert crema["proposed model"][:3] == ["23.565", "0.7", "0.216"] and crema["proposed model"][5] == "2"
    lrw = _table(tables_markdown("sda", {}, "lrw"), "Tab. 6 (LRW)")
    assert list(lrw)[1:] == ["this run", "proposed model", "ATVGNet (Chen et al. 2019), as measured there"]
    assert lrw["ATVGNet (Chen et al. 2019), as measured there"] == [
        "20.107", "0.743", "0.189", "2.14", "–", "2", "7", "0", "0"]
    # a missing "ground truth" real row and missing scores never crash the Tab. 5 either
    tab5 = _table(tables_markdown("sda", {}, "grid"), "Tab. 5 (GRID ablations)")
    assert tab5["this run"] == ["–"] * 9 and "real frames (this run)" not in tab5


def test_sda_row_parser():
    assert published._sda("∞ / 1.00 / – / 0.98 / 21.76 / 1 / 7.0 / .39 / .41")["psnr"] == math.inf
    assert "cpbd" not in published._sda("1 / 1 / – / 1 / 1 / 1 / 1 / 1 / 1")
    with pytest.raises(ValueError):
        published._sda("1 / 2")


def test_chen_tables_unchanged():
    tab3 = _table(tables_markdown("lipgan", {"lmd": 1.5, "cpbd": 0.2, "cpbd_real": 0.27}, "grid"), "Tab. 3 (GRID)")
    assert tab3["this run"] == ["1.500", "–", "–", "0.200"]
    assert tab3["real frames (this run)"] == ["0.000", "–", "–", "0.270"]
    assert tab3["full model"] == ["1.18", "0.73", "29.89", "0.175"]
    assert "real frames (this run)" not in _table(tables_markdown("lipgan", {"lmd": 1.5}, "grid"), "Tab. 3 (GRID)")


def test_published_leaderboard_rows_per_dataset():
    sda = PUBLISHED["Vougioukas et al. 2019"]
    assert set(sda) == {"grid", "tcd_timit", "crema_d", "lrw"}
    assert sda["grid"]["wer"] == 23.1 and sda["grid"]["wer_real"] == 21.76
    assert sda["grid"]["blinks_per_s_peaks_real"] == 0.39
    assert "wer" not in sda["lrw"] and sda["lrw"]["psnr"] == 23.077 and sda["crema_d"]["av_offset"] == 2
    assert all(k in published.METRICS for by_dataset in PUBLISHED.values() for values in by_dataset.values()
               for k in values)


def test_leaderboard_shows_wer_in_percent_beside_the_paper():
    md = leaderboard_markdown({"sda": SCORES, "atvgnet": {"lmd": 1.2, "psnr": 28.0}}, "grid")
    assert "| WER (%) | 30.000 | — |  |  | 23.1 |" in md
    assert "| WER (%), real frames | 20.000 | — |  |  | 21.76 |" in md
    assert "| blinks / s (peak detector), real frames | 0.600 | — |  |  | 0.39 |" in md
    assert "| blinks / s, real frames | 1.100 | — |  |  |  |" in md  # the threshold detector: no paper beside it
    assert "| CPBD, real frames | 0.270 | — |  | 0.141 | 0.276 |" in md
    assert "| LMD (mouth) | 1.500 | 1.200 | 1.29 | 1.18 |  |" in md  # the columns the benchmark test reads
    # without WER scores the GRID leaderboard still shows the paper's WER; on LRW there is none
    rows = {r["metric"]: r for r in leaderboard_rows({"atvgnet": {"psnr": 28.0}}, "grid")}
    assert rows["WER (%)"]["atvgnet (this run)"] == "—" and rows["WER (%)"]["Vougioukas et al. 2019"] == "23.1"
    lrw = {r["metric"]: r for r in leaderboard_rows({"sda": SCORES}, "lrw")}
    assert lrw["WER (%)"]["Vougioukas et al. 2019"] == "" and lrw["PSNR (dB)"]["Vougioukas et al. 2019"] == "23.077"
    assert lrw["PSNR (dB)"]["ATVGnet (Chen et al. 2019)"] == "30.91"
    tcd = {r["metric"]: r for r in leaderboard_rows({"sda": {"psnr": 22.0}}, "tcd_timit")}
    assert tcd["PSNR (dB)"] == {"metric": "PSNR (dB)", "sda (this run)": "22.000", "Vougioukas et al. 2019": "24.243"}
