"""The README's result tables and benchmark headlines are regenerated from the committed
result files: a number in the README that no file backs fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iic_helpers.ablation import markdown_table
from iic_helpers.config import Config

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BENCH = REPO / "benchmarks" / "results"


@pytest.mark.parametrize("folder", ["results", "results/ablation-30ep"])
def test_ablation_tables_are_their_json_files(folder: str) -> None:
    """``ablation.md`` and the README's copy of it are what ``ablation.json`` makes."""
    data = json.loads((REPO / folder / "ablation.json").read_text())
    table = markdown_table(data["table"], Config.from_dict(data["config"]))
    assert table == (REPO / folder / "ablation.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    missing = [row for row in rows if row not in README.splitlines()]
    assert not missing, f"README lacks these rows of {folder}/ablation.json: {missing}"


def _rows(name: str) -> list[dict]:
    return json.loads((BENCH / f"{name}.json").read_text())["rows"]


def _pick(rows: list[dict], **match: str) -> dict:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, match
    return found[0]


def benchmark_headlines() -> dict[str, str]:
    """Each headline the README quotes, formatted as it prints there, from the JSON files."""
    step = _rows("train_step")
    speed = {(r["model"], r["variant"]): r for r in step}
    load = _rows("data_loading")
    ucf = json.loads((BENCH / "retrieval.json").read_text())
    ours = _pick(ucf["ucf"]["rows"], method="ours")
    kinetics = ucf["kinetics"]
    explorer = json.loads((BENCH / "explorer.json").read_text())
    bokeh = _pick(explorer["libraries"], library="bokeh")
    plotly = _pick(explorer["libraries"], library="plotly")
    (ucf_explorer,) = explorer["ucf101"]
    jpeg = _pick(load, dataset="ucf_like", format="jpeg")
    resized = _pick(load, dataset="ucf_like", format="pyav_preresized")
    return {
        "tiny, one thread": f"{speed['tiny', 'ours+t1']['speedup'] / speed['tiny', 'baseline+t1']['speedup']:.2f}x",  # noqa: E501
        "tiny, two threads": f"{speed['tiny', 'ours']['speedup']:.2f}x on two",
        "paper model": f"{speed['paper', 'ours']['speedup']:.2f}x for the paper model",
        "paper GFLOP/s": f"{speed['paper', 'ours']['gflops']:.0f} GFLOP/s",
        "pre-resized": f"**{resized['speedup_vs_jpeg']:.2f}x**",
        "vs previous resize": (
            f"{resized['speedup_vs_jpeg'] / _pick(load, format='preresized_h264_avi_gop250')['speedup_vs_jpeg']:.1f}x the previous"  # noqa: E501
        ),
        "disk": f"1/{jpeg['storage_mb'] / resized['storage_mb']:.0f} of the disk",
        "originals": f"{_pick(load, dataset='ucf_like', format='pyav')['speedup_vs_jpeg']:.2f}x",
        "cache": f"`cache=True` (the tiny preset) {_pick(load, dataset='synthetic', format='cache')['speedup_vs_jpeg']:.1f}x",  # noqa: E501
        "retrieval speed": f"**{ours['speedup']:.2f}x faster with {ours['memory_ratio']:.2f}x the memory**",  # noqa: E501
        "kinetics time": f"{kinetics['full']['ours']['seconds']:.1f} s within {kinetics['full']['ours']['peak_extra_mib']:.0f} MiB",  # noqa: E501
        "kinetics original": f"would need {kinetics['original_memory_float64_computed']['total_gb']:.0f} GB",  # noqa: E501
        "explorer javascript": f"{bokeh['library_js_MB']:.2f} vs {plotly['library_js_MB']:.2f} MB of inlined JavaScript",  # noqa: E501
        "explorer load": f"{bokeh['load_s']:.1f} vs {plotly['load_s']:.1f} s to load",
        "explorer projection": f"projected in {ucf_explorer['projection_s']:.0f} s, page {ucf_explorer['page_MB']:.1f} MB",  # noqa: E501
    }


def test_benchmark_headlines_are_the_result_files() -> None:
    text = " ".join(README.split())  # line breaks inside a sentence do not matter
    wrong = {name: quoted for name, quoted in benchmark_headlines().items() if quoted not in text}
    assert not wrong, f"README's benchmark headlines differ from benchmarks/results: {wrong}"


def _diagnosis() -> dict[str, dict[str, float]]:
    lines = (REPO / "results" / "plateau_diagnosis.txt").read_text().splitlines()
    header = lines[0].split()[1:]
    return {
        line.split()[0]: dict(zip(header, map(float, line.split()[1:]), strict=True))
        for line in lines[1:]
    }


def _span(rows: dict[str, dict[str, float]], column: str, run_prefix: str) -> str:
    values = [r[column] for name, r in rows.items() if name.startswith(run_prefix)]
    assert values, run_prefix
    return f"{min(values):.2f}–{max(values):.2f}"


def test_diagnosis_ranges_quoted_in_the_readme_are_the_file() -> None:
    rows = _diagnosis()
    text = " ".join(README.split())
    quoted = {
        "repeat copy, IIC repeat (60)": (
            f"is {_span(rows, 'repeat', 'runs/ablation/iic-repeat')} for the IIC repeat"
        ),
        "repeat copy, CMC (60)": f"and {_span(rows, 'repeat', 'runs/ablation/cmc')} for the CMC",
        "shuffle, shuffle-trained (60)": (
            f"(cosine {_span(rows, 'shuffle', 'runs/ablation/iic-shuffle')} after training)"
        ),
        "shuffle, IIC at 30": f"well ({_span(rows, 'shuffle', 'runs/ablation-30ep/iic')};",
    }
    wrong = {name: q for name, q in quoted.items() if q not in text}
    assert not wrong, f"README's similarity ranges differ from plateau_diagnosis.txt: {wrong}"
