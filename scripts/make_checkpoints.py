"""Train the shipped tiny-preset checkpoints (IIC repeat, IIC shuffle, CMC) on a CPU.

    python scripts/make_checkpoints.py [--epochs N] [--seed S] [--only iic-repeat cmc]

Each variant is pretrained with the ``tiny`` preset on the default synthetic dataset (made if
missing), then evaluated by retrieval; ``checkpoints/tiny-<variant>.pt`` (the run's
checkpoint), ``.history.csv`` and ``.results.json`` are written. The notebooks load these
files when a reader skips training. ``make checkpoints`` runs this script.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "iic-repeat": {"intra_negative": "repeat"},
    "iic-shuffle": {"intra_negative": "shuffle"},
    "cmc": {"intra_negative": "none"},
}


def main(argv: list[str] | None = None) -> int:
    from iic_helpers.config import make_config
    from iic_helpers.data import make_synthetic_dataset, resolve_data_root
    from iic_helpers.retrieval import run_retrieval
    from iic_helpers.train import pretrain

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="default: the tiny preset's epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", choices=sorted(VARIANTS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest here)")
    parser.add_argument("--out", type=Path, default=REPO / "checkpoints")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = make_config("tiny", seed=args.seed)
    make_synthetic_dataset(resolve_data_root(base.data_root))
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or VARIANTS:
        overrides = dict(VARIANTS[name])
        if args.epochs is not None:
            overrides["epochs"] = args.epochs
        cfg = base.replace(**overrides)
        run_dir = REPO / "runs" / "checkpoints" / f"tiny-{name}-s{args.seed}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        start = time.perf_counter()
        pretrain(cfg, run_dir)
        minutes = (time.perf_counter() - start) / 60
        results = run_retrieval(cfg, run_dir / "checkpoint.pt", run_dir, progress=False)
        stem = args.out / f"tiny-{name}"
        shutil.copyfile(run_dir / "checkpoint.pt", stem.with_suffix(".pt"))
        shutil.copyfile(run_dir / "history.csv", stem.with_suffix(".history.csv"))
        shutil.copyfile(run_dir / "results.json", stem.with_suffix(".results.json"))
        top1 = {v: round(100 * r["top1"], 1) for v, r in results["retrieval_variants"].items()}
        print(
            f"{name}: {cfg.epochs} epochs in {minutes:.1f} min; retrieval top-1 % {top1} "
            f"-> {stem.with_suffix('.pt')}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
