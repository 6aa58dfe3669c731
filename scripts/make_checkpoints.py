"""Train the shipped tiny-preset checkpoints on a CPU: pretrained backbones, then fine-tuned ones.

    python scripts/make_checkpoints.py [--stage pretrain|finetune|all] [--epochs N] [--seed S]
                                       [--only iic-repeat cmc] [--threads T]

Stage ``pretrain``: each variant (IIC repeat, IIC shuffle, CMC) is pretrained with the
``tiny`` preset on the default synthetic dataset (made if missing), then evaluated by
retrieval; ``checkpoints/tiny-<variant>.pt`` (the run's checkpoint), ``.history.csv`` and
``.results.json`` are written.

Stage ``finetune``: the tiny preset's fine-tuning recipe (``ft_epochs`` epochs, seed ``S``)
from three initialisations: random (``scratch``), ``checkpoints/tiny-cmc.pt`` and
``checkpoints/tiny-iic-repeat.pt``, each followed by the linear probe. Every run's folder is
shipped whole as ``checkpoints/finetune/tiny-<init>/`` (``best.pt``, ``config.json``,
``history.csv``, ``results.json`` with ``finetune`` and ``linear_probe``,
``test_predictions.npz``).

The notebooks load these files when a reader skips training (``TRAIN = "short"``).
``make checkpoints`` runs this script (both stages). The shipped files were made with
``--threads 1``: the thread count changes float rounding, so another count (or another CPU)
gives slightly different numbers.
"""

from __future__ import annotations

import argparse
import os
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
#: Fine-tuning initialisations: name -> shipped pretrained checkpoint (None: random weights).
FINETUNE_INITS = {"scratch": None, "cmc": "tiny-cmc.pt", "iic-repeat": "tiny-iic-repeat.pt"}
#: The files of a fine-tuning run folder that are shipped.
FINETUNE_FILES = ("best.pt", "config.json", "history.csv", "results.json", "test_predictions.npz")


def pretrain_stage(args: argparse.Namespace) -> None:
    from iic_helpers.config import make_config
    from iic_helpers.retrieval import run_retrieval
    from iic_helpers.train import pretrain

    base = make_config("tiny", seed=args.seed)
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


def finetune_stage(args: argparse.Namespace) -> None:
    from iic_helpers.config import make_config
    from iic_helpers.finetune import finetune, linear_probe
    from iic_helpers.runs import read_results

    cfg = make_config("tiny", seed=args.seed)
    if args.epochs is not None:
        cfg = cfg.replace(ft_epochs=args.epochs)
    for name, source in FINETUNE_INITS.items():
        if args.only and name not in args.only:
            continue
        checkpoint = None
        if source is not None:  # repository-relative, so results.json names no machine path
            checkpoint = (args.out / source).resolve().relative_to(REPO)
            if not (REPO / checkpoint).exists():
                raise FileNotFoundError(
                    f"{REPO / checkpoint} is missing: run the pretrain stage first "
                    "(python scripts/make_checkpoints.py --stage pretrain)"
                )
        run_dir = REPO / "runs" / "checkpoints" / f"finetune-tiny-{name}-s{args.seed}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        start = time.perf_counter()
        finetune(cfg, checkpoint, run_dir, progress=False)
        linear_probe(cfg, checkpoint, run_dir, progress=False)
        minutes = (time.perf_counter() - start) / 60
        target = args.out / "finetune" / f"tiny-{name}"
        target.mkdir(parents=True, exist_ok=True)
        for file in FINETUNE_FILES:
            shutil.copyfile(run_dir / file, target / file)
        results = read_results(run_dir)
        print(
            f"finetune {name}: {cfg.ft_epochs} epochs + linear probe in {minutes:.1f} min; "
            f"test accuracy {100 * results['finetune']['test_accuracy']:.1f} %, linear probe "
            f"{100 * results['linear_probe']['accuracy']:.1f} % -> {target}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    from iic_helpers.config import make_config
    from iic_helpers.data import make_synthetic_dataset, resolve_data_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("pretrain", "finetune", "all"), default="all")
    parser.add_argument(
        "--epochs", type=int, help="pretraining (or fine-tuning) epochs; default: the preset's"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only",
        nargs="*",
        choices=sorted(set(VARIANTS) | set(FINETUNE_INITS)),
        help="variants (pretrain stage) or initialisations (finetune stage) to make",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (the shipped files used 1)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "checkpoints")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    os.chdir(REPO)  # paths in the shipped results.json are repository-relative
    torch.set_num_threads(args.threads)
    make_synthetic_dataset(resolve_data_root(make_config("tiny").data_root))
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage in ("pretrain", "all"):
        pretrain_stage(args)
    if args.stage in ("finetune", "all"):
        finetune_stage(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
