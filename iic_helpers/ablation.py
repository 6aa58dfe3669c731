"""The ablation behind the README's results table: random vs CMC vs IIC (repeat, shuffle).

The flow row (``iic-repeat-u``: IIC repeat with the optical-flow ``u`` view as view 2) runs
only when asked for (``--variants iic-repeat-u``) and needs ``python -m iic_helpers flow``
first. Its retrieval uses the same protocol as every row (merged RGB + residual features).

``run_ablation(cfg, variants, seeds)`` pretrains each variant with each seed on the tiny
preset, then measures retrieval (top-1/5/10, merged RGB + residual features), the linear
probe and fine-tuning, and writes ``results/ablation.json`` and ``results/ablation.md`` as
mean ± std over seeds. Finished runs (``runs/ablation/<variant>-s<seed>/results.json`` with
every measurement, made after the requested number of pretraining epochs) are reused, so
the command can be interrupted, resumed, or split across processes (``--variants``) and
aggregated at the end. Asking for more epochs than a finished run has continues its
pretraining (exactly, see ``pretrain(resume=True)``) and measures it again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import atomic_write_text, load_checkpoint
from .config import Config
from .data.builders import resolve_data_root
from .finetune import finetune, linear_probe
from .retrieval import run_retrieval
from .runs import ABLATION_RUN_DIR, locks_run_dir, read_results, update_results
from .train import pretrain, read_history

__all__ = [
    "ABLATION_VARIANTS",
    "DEFAULT_VARIANTS",
    "run_ablation",
    "aggregate",
    "markdown_table",
    "missing_measures",
    "run_one",
    "run_metrics",
]

#: Variant name -> config overrides ("random" is not pretrained).
ABLATION_VARIANTS: dict[str, dict[str, Any]] = {
    "random": {},
    "cmc": {"intra_negative": "none"},
    "iic-repeat": {"intra_negative": "repeat"},
    "iic-shuffle": {"intra_negative": "shuffle"},
    "iic-repeat-u": {"intra_negative": "repeat", "view2": "u"},
}
#: What ``python -m iic_helpers ablation`` runs without ``--variants`` (no flow needed).
DEFAULT_VARIANTS = ("random", "cmc", "iic-repeat", "iic-shuffle")
METRICS = ("top1", "top5", "top10", "linear_probe", "finetune", "pretrain_minutes")
PAPER_UCF101_TOP1 = {"random": 9.9, "cmc": 26.4, "iic-repeat": 36.5, "iic-shuffle": 34.6}


#: What a finished ablation run's ``results.json`` holds.
MEASURES: tuple[str, ...] = ("retrieval", "linear_probe", "finetune")


def missing_measures(results: dict[str, Any]) -> list[str]:
    """The measures of :data:`MEASURES` that a run's results lack (empty when it is finished).

    >>> missing_measures({"retrieval": {}, "finetune": {}})
    ['linear_probe']
    """
    return [key for key in MEASURES if key not in results]


@locks_run_dir("ablation", lambda root, variant, seed, **_: Path(root) / f"{variant}-s{seed}")
def run_one(cfg: Config, variant: str, seed: int, root: Path, progress: bool = False) -> dict:
    """Pretrain (unless random), then retrieval, linear probe and fine-tuning for one run."""
    run_dir = root / f"{variant}-s{seed}"
    vcfg = cfg.replace(seed=seed, **ABLATION_VARIANTS[variant])
    wanted_epochs = 0 if variant == "random" else vcfg.epochs
    if (run_dir / "results.json").exists():
        done = read_results(run_dir)
        if not missing_measures(done) and done.get("pretrain_epochs") == wanted_epochs:
            return done
    _require_flow(vcfg, variant)
    checkpoint = None
    minutes = 0.0
    if variant != "random":
        ckpt = run_dir / "checkpoint.pt"
        finished = load_checkpoint(ckpt)["epoch"] if ckpt.exists() else 0
        if finished > vcfg.epochs:
            raise ValueError(
                f"{ckpt} has {finished} epochs, more than the {vcfg.epochs} asked for: choose "
                "another --run-dir for a shorter budget"
            )
        if finished < vcfg.epochs:  # new, interrupted or extended: resume continues exactly
            pretrain(vcfg, run_dir, resume=ckpt.exists(), progress=progress)
        minutes = sum(row["seconds"] for row in read_history(run_dir)) / 60
        checkpoint = ckpt
    run_retrieval(vcfg, checkpoint, run_dir, progress=progress)
    linear_probe(vcfg, checkpoint, run_dir, progress=progress)
    finetune(vcfg, checkpoint, run_dir / "finetune", progress=progress)
    ft = read_results(run_dir / "finetune")["finetune"]
    extra = {"finetune": ft, "pretrain_minutes": minutes, "pretrain_epochs": wanted_epochs}
    return json.loads(update_results(run_dir, extra).read_text())


def _require_flow(cfg: Config, variant: str) -> None:
    """A flow variant needs ``<data_root>/flow/<u|v>``: say which command makes it."""
    if cfg.view2 not in ("u", "v"):
        return
    root = resolve_data_root(cfg.data_root)
    if not (root / "flow" / cfg.view2).is_dir():
        raise FileNotFoundError(
            f"variant {variant!r} needs optical flow in {root / 'flow' / cfg.view2}: run "
            f"`python -m iic_helpers flow --data-root {root}` first (a few minutes for the "
            "synthetic set)"
        )


def run_metrics(results: dict[str, Any]) -> dict[str, float]:
    """One run's table measures from its ``results.json``: accuracies in %, minutes."""
    return {
        "top1": 100 * results["retrieval"]["top1"],
        "top5": 100 * results["retrieval"]["top5"],
        "top10": 100 * results["retrieval"]["top10"],
        "linear_probe": 100 * results["linear_probe"]["accuracy"],
        "finetune": 100 * results["finetune"]["test_accuracy"],
        "pretrain_minutes": results.get("pretrain_minutes", 0.0),
    }


def aggregate(root: Path, variants: Sequence[str], seeds: Sequence[int]) -> dict[str, Any]:
    """Mean and std (over the seeds found complete) of every metric, per variant."""
    table: dict[str, Any] = {}
    for variant in variants:
        runs = []
        for seed in seeds:
            run_dir = root / f"{variant}-s{seed}"
            if (run_dir / "results.json").exists() and not missing_measures(read_results(run_dir)):
                runs.append((seed, run_metrics(read_results(run_dir))))
        if not runs:
            continue
        values = {m: np.array([r[m] for _, r in runs]) for m in METRICS}
        table[variant] = {
            "seeds": [s for s, _ in runs],
            **{
                m: {
                    "mean": float(v.mean()),
                    "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                    "values": [round(float(x), 2) for x in v],
                }
                for m, v in values.items()
            },
        }
    return table


def markdown_table(table: dict[str, Any], cfg: Config) -> str:
    """The README's table: ours (mean ± std over seeds) next to the paper's UCF101 top-1."""
    lines = [
        f"Preset {cfg.preset} ({cfg.backbone} width {cfg.width}, "
        f"{cfg.clip_len}x{cfg.crop}x{cfg.crop} clips, {cfg.epochs} pretraining epochs, "
        f"k={cfg.k}, tau={cfg.temperature}), data {cfg.data_root}; mean ± std over seeds; "
        "accuracies in %.",
        "",
        "| init | seeds | retrieval top-1 | top-5 | top-10 | linear probe | fine-tune "
        "| pretrain min/run | paper UCF101 top-1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant, row in table.items():
        cells = [f"{row[m]['mean']:.1f} ± {row[m]['std']:.1f}" for m in METRICS[:5]]
        lines.append(
            f"| {variant} | {len(row['seeds'])} | "
            + " | ".join(cells)
            + f" | {row['pretrain_minutes']['mean']:.1f} | {PAPER_UCF101_TOP1.get(variant, '–')} |"
        )
    return "\n".join(lines) + "\n"


def run_ablation(
    cfg: Config,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    root: str | Path = ABLATION_RUN_DIR,
    out_dir: str | Path = "results",
    progress: bool = False,
) -> dict[str, Any]:
    """Run (or reuse) every variant x seed, then write ``ablation.json`` / ``ablation.md``."""
    unknown = set(variants) - set(ABLATION_VARIANTS)
    if unknown:
        raise ValueError(
            f"unknown variants {sorted(unknown)}; choose from {list(ABLATION_VARIANTS)}"
        )
    root, out_dir = Path(root), Path(out_dir)
    for variant in variants:
        for seed in seeds:
            start = time.perf_counter()
            results = run_one(cfg, variant, seed, root, progress)
            print(
                f"ablation: {variant} seed {seed}: retrieval top-1 "
                f"{100 * results['retrieval']['top1']:.1f} %, fine-tune "
                f"{100 * results['finetune']['test_accuracy']:.1f} % "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    table = aggregate(root, list(ABLATION_VARIANTS), sorted(set(seeds) | {0, 1, 2}))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out_dir / "ablation.json",
        json.dumps({"config": cfg.to_dict(), "table": table}, indent=2) + "\n",
    )
    atomic_write_text(out_dir / "ablation.md", markdown_table(table, cfg))
    return table
