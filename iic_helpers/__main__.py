"""Command line: ``python -m iic_helpers COMMAND`` (see ``--help``).

Commands: ``make-synthetic``, ``validate``, ``flow``, ``pretrain``, ``retrieve``,
``finetune``, ``linear-probe``, ``ablation``, ``explore``. Every command takes
``--preset``, ``--data-root``, ``--set FIELD=VALUE`` (any preset field, repeatable) and
``--debug``; each also takes those of ``--run-dir``, ``--epochs N``, ``--seed``,
``--device``, ``--threads`` it reads (:data:`COMMAND_FLAGS`). Every command prints
what it did and where it wrote it, and on an expected error (bad input, unreadable video,
split or config error, broken checkpoint, a run directory in use) prints a one-line reason
and exits 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .config import PRESETS, Config, make_config, parse_overrides
from .paths import REPO_ROOT

__all__ = [
    "shown",
    "COMMAND_FLAGS",
    "config_from_args",
    "cmd_make_synthetic",
    "cmd_validate",
    "cmd_flow",
    "cmd_pretrain",
    "cmd_retrieve",
    "cmd_finetune",
    "cmd_linear_probe",
    "cmd_ablation",
    "cmd_explore",
    "build_parser",
    "expected_errors",
    "error_line",
    "main",
]


#: The optional common flags each command reads (``--preset``, ``--data-root``, ``--set`` and
#: ``--debug`` are on every command).
COMMAND_FLAGS: dict[str, tuple[str, ...]] = {
    "make-synthetic": ("seed",),
    "validate": (),
    "flow": (),
    "pretrain": ("run-dir", "epochs", "seed", "device", "threads"),
    "retrieve": ("run-dir", "seed", "device", "threads"),
    "finetune": ("run-dir", "epochs", "seed", "device", "threads"),
    "linear-probe": ("run-dir", "seed", "device", "threads"),
    "ablation": ("run-dir", "epochs", "device", "threads"),
    "explore": ("seed", "device", "threads"),
}


def _common(parser: argparse.ArgumentParser, command: str) -> None:
    """The shared flags, only those ``command`` reads (:data:`COMMAND_FLAGS`)."""
    wanted = COMMAND_FLAGS[command]
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--data-root", help="dataset root (splits/, videos/)")
    if "run-dir" in wanted:
        parser.add_argument("--run-dir", help="where the run's files go")
    if "epochs" in wanted:
        what = "fine-tuning epochs" if command == "finetune" else "total number of epochs"
        parser.add_argument("--epochs", type=int, help=what)
    if "seed" in wanted:
        parser.add_argument("--seed", type=int)
    if "device" in wanted:
        parser.add_argument("--device", help="cpu, cuda, cuda:1 or auto")
    if "threads" in wanted:
        parser.add_argument(
            "--threads",
            type=int,
            help="torch CPU threads (default: every core, fastest on an otherwise idle "
            "machine; 1 per job when several jobs share the CPU)",
        )
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="override a field"
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (IIC_DEBUG=1)"
    )


def shown(path: str | os.PathLike[str]) -> str:
    """How the command line prints a path: relative to the repository when inside it (so
    that output does not show this machine's folders), else as given."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def config_from_args(args: argparse.Namespace) -> Config:
    overrides: dict[str, object] = parse_overrides(args.set)
    for flag, name in (
        ("data_root", "data_root"),
        ("epochs", "epochs"),
        ("seed", "seed"),
        ("device", "device"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[name] = value
    return make_config(args.preset, **overrides)


def cmd_make_synthetic(args: argparse.Namespace) -> int:
    from .data import make_synthetic_dataset, resolve_data_root

    cfg = config_from_args(args)
    start = time.perf_counter()
    options = {k: int(v) for k, v in parse_overrides(args.option).items()}
    root = make_synthetic_dataset(
        resolve_data_root(cfg.data_root), seed=cfg.seed, overwrite=args.overwrite, **options
    )
    print(f"make-synthetic: dataset ready at {shown(root)} ({time.perf_counter() - start:.1f} s)")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .data import resolve_data_root, validate_dataset

    cfg = config_from_args(args)
    report = validate_dataset(
        resolve_data_root(cfg.data_root),
        split=cfg.split,
        clip_len=cfg.clip_len,
        exact=not args.fast,
    )
    print(report)
    return 0 if report.ok else 1


def cmd_flow(args: argparse.Namespace) -> int:
    from .data import read_split, resolve_data_root
    from .data.flow import write_flow_for_records

    cfg = config_from_args(args)
    root = resolve_data_root(cfg.data_root)
    start = time.perf_counter()
    records = read_split(root, cfg.split, "train") + read_split(root, cfg.split, "test")
    counts = write_flow_for_records(records, method=args.method)
    print(
        f"flow: {counts['written']} videos written, {counts['skipped']} already done, "
        f"in {time.perf_counter() - start:.0f} s -> {shown(root / 'flow')}/u, /v"
    )
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .train import default_run_dir, pretrain

    cfg = config_from_args(args)
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(cfg)
    if args.resume:
        cfg = _resume_config(cfg, args, run_dir)
    start = time.perf_counter()
    pretrain(cfg, run_dir, resume=args.resume)
    print(
        f"pretrain: {cfg.epochs} epochs done in {time.perf_counter() - start:.0f} s; "
        f"wrote {shown(run_dir / 'checkpoint.pt')}, {shown(run_dir / 'history.csv')}, "
        f"{shown(run_dir / 'config.json')}"
    )
    return 0


def _resume_config(cfg: Config, args: argparse.Namespace, run_dir: Path) -> Config:
    """On ``--resume``, ``data_root`` and ``device`` not given on the command line are the
    run's own (from its ``config.json``), not the preset's."""
    given = set(parse_overrides(args.set))
    saved_path = run_dir / "config.json"
    if not saved_path.is_file():
        return cfg
    saved = json.loads(saved_path.read_text())
    keep = {}
    for flag, name in (("data_root", "data_root"), ("device", "device")):
        if getattr(args, flag) is None and name not in given and name in saved:
            keep[name] = saved[name]
    return cfg.replace(**keep)


def cmd_retrieve(args: argparse.Namespace) -> int:
    from .retrieval import run_retrieval
    from .runs import eval_run_dir

    cfg = config_from_args(args)
    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:  # a run's checkpoint.pt reports into its run; other files never beside themselves
        run_dir = eval_run_dir(args.checkpoint, "retrieval", cfg.preset, cfg.seed)
    results = run_retrieval(cfg, args.checkpoint, run_dir)
    print(
        json.dumps(
            {"retrieval": results["retrieval"], "chance_top1": results["chance_top1"]}, indent=2
        )
    )
    print(f"retrieve: wrote {shown(run_dir / 'results.json')}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from .finetune import finetune
    from .runs import finetune_run_dir, read_results

    cfg = config_from_args(args)
    if args.epochs is not None:  # --epochs is the fine-tuning length here
        cfg = cfg.replace(ft_epochs=args.epochs)
    run_dir = Path(args.run_dir) if args.run_dir else finetune_run_dir(cfg)
    start = time.perf_counter()
    finetune(cfg, args.checkpoint, run_dir)
    result = read_results(run_dir)["finetune"]
    print(
        f"finetune: test accuracy {100 * result['test_accuracy']:.1f} % "
        f"(best validation epoch {result['best_epoch']}, init: {result['init']}) in "
        f"{time.perf_counter() - start:.0f} s; wrote {shown(run_dir / 'results.json')}, "
        f"{shown(run_dir / 'best.pt')}, {shown(run_dir / 'history.csv')}"
    )
    return 0


def cmd_linear_probe(args: argparse.Namespace) -> int:
    from .finetune import linear_probe
    from .runs import eval_run_dir

    cfg = config_from_args(args)
    run_dir = (  # as retrieve: never beside a shipped file, never two checkpoints in one file
        Path(args.run_dir)
        if args.run_dir
        else eval_run_dir(args.checkpoint, "linear-probe", cfg.preset, cfg.seed)
    )
    result = linear_probe(cfg, args.checkpoint, run_dir)["linear_probe"]
    print(
        f"linear-probe: test accuracy {100 * result['accuracy']:.1f} % ({result['init']}); "
        f"wrote {shown(run_dir / 'results.json')}"
    )
    return 0


def cmd_ablation(args: argparse.Namespace) -> int:
    from .ablation import run_ablation
    from .runs import ABLATION_RUN_DIR

    cfg = config_from_args(args)
    start = time.perf_counter()
    run_ablation(
        cfg, args.variants, args.seeds, root=args.run_dir or ABLATION_RUN_DIR, out_dir=args.out
    )
    print(
        f"ablation: done in {(time.perf_counter() - start) / 60:.0f} min; wrote "
        f"{shown(Path(args.out) / 'ablation.md')} and {shown(Path(args.out) / 'ablation.json')}"
    )
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    from .explorer import DEFAULT_CACHE, explore

    cfg = config_from_args(args)
    cache_dir = args.cache_dir or DEFAULT_CACHE
    start = time.perf_counter()
    out = explore(
        cfg,
        args.checkpoint,
        args.out,
        split=args.split,
        view=args.view,
        method=args.method,
        color_by=args.color_by,
        extras=args.extra,
        k=args.k,
        thumbnails=args.thumbnails,
        thumb_size=args.thumb_size,
        thumb_frames=args.thumb_frames,
        max_videos=args.max_videos,
        cache_root=cache_dir,
    )
    size = out.stat().st_size / 1e6
    print(
        f"explore: {len(args.checkpoint)} panel(s), {args.split} videos, {args.method}, in "
        f"{time.perf_counter() - start:.0f} s; wrote {shown(out)} ({size:.1f} MB, works offline); "
        f"cache in {shown(cache_dir)}"
    )
    return 0


def _explore_flags(p: argparse.ArgumentParser) -> None:
    from .explorer import COLOR_MODES, EXTRA_KINDS, SPLITS, VIEWS

    p.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        help="a checkpoint (ours or original IIC), or 'random'; repeat for side-by-side panels",
    )
    p.add_argument("--out", required=True, help="the HTML page to write")
    p.add_argument("--split", default="test", choices=SPLITS)
    p.add_argument("--method", default="umap", choices=("umap", "tsne", "pca"))
    p.add_argument("--view", default="merged", choices=VIEWS, help="retrieval features")
    p.add_argument("--color-by", default="class", choices=COLOR_MODES, help="initial colouring")
    p.add_argument(
        "--extra",
        nargs="*",
        default=[],
        choices=EXTRA_KINDS,
        help="extra points per video: intra-negatives, residual view (needs --view rgb)",
    )
    p.add_argument("--k", type=int, default=5, help="neighbours listed on click")
    p.add_argument(
        "--thumbnails", type=int, default=600, help="videos with a hover thumbnail (a sample)"
    )
    p.add_argument("--thumb-size", type=int, default=48, help="thumbnail pixels (<= 96)")
    p.add_argument("--thumb-frames", type=int, default=8, help="thumbnail frames (<= 16)")
    p.add_argument("--max-videos", type=int, help="keep every n-th video, at most this many")
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="features, projections, thumbnails (default: the repository's runs/explore-cache)",
    )


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "make-synthetic": (cmd_make_synthetic, "write the synthetic motion dataset"),
    "validate": (cmd_validate, "check a dataset root against its split lists"),
    "flow": (cmd_flow, "compute optical flow (u, v JPEG folders) for a dataset root"),
    "pretrain": (cmd_pretrain, "IIC / CMC pretraining"),
    "retrieve": (cmd_retrieve, "video retrieval top-k with a checkpoint or a random network"),
    "finetune": (cmd_finetune, "fine-tune a backbone (checkpoint or random) for recognition"),
    "linear-probe": (cmd_linear_probe, "frozen features + logistic regression"),
    "ablation": (cmd_ablation, "random vs CMC vs IIC over seeds -> results/ablation.md"),
    "explore": (cmd_explore, "interactive embedding explorer -> one offline HTML page"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m iic_helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, allow_abbrev=False)  # --seed is not --seeds
        _common(p, name)
        if name == "make-synthetic":
            p.add_argument("--overwrite", action="store_true")
            p.add_argument(
                "--option",
                action="append",
                default=[],
                metavar="NAME=INT",
                help="generator option, e.g. n_groups=25",
            )
        if name == "flow":
            p.add_argument("--method", default="farneback", choices=("farneback", "tvl1"))
        if name == "validate":
            p.add_argument(
                "--fast",
                action="store_true",
                help="frame counts from the headers only (misses truncated files); the "
                "default decodes every video to its end (UCF101: minutes on a few cores)",
            )
        if name == "pretrain":
            p.add_argument(
                "--resume", action="store_true", help="continue the run in --run-dir up to --epochs"
            )
        if name == "ablation":
            from .ablation import ABLATION_VARIANTS, DEFAULT_VARIANTS

            p.add_argument(
                "--variants",
                nargs="+",
                default=list(DEFAULT_VARIANTS),
                choices=list(ABLATION_VARIANTS),
                help="default: the four rows without flow; iic-repeat-u needs `flow` first",
            )
            p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
            p.add_argument("--out", default="results", help="folder for ablation.md/.json")
        if name == "explore":
            _explore_flags(p)
        if name in ("retrieve", "finetune", "linear-probe"):
            p.add_argument("--checkpoint", help="ours or an original IIC checkpoint")
    return parser


def expected_errors() -> tuple[type[BaseException], ...]:
    """Error classes that mean bad input or a broken file, not a bug: one line, exit 2."""
    from .data.video import VideoReadError

    return (
        VideoReadError,
        ValueError,  # config, split-file (SplitFormatError) and argument errors
        OSError,  # missing files and folders, full disk
        RuntimeError,  # checkpoint errors (corrupt, unsafe, mismatch), a run dir in use
        ArithmeticError,  # non-finite loss or features
        pickle.UnpicklingError,
        EOFError,
        KeyError,
    )


def error_line(err: BaseException) -> str:
    """The one-line reason for an error (DataLoader workers wrap the original: unwrap it)."""
    text = str(err).strip()
    if text.startswith("Caught ") and "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    if isinstance(err, KeyError) and text:
        text = f"missing entry {text}"
    return text.splitlines()[0] if text else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    handler = COMMANDS[args.command][0]
    try:
        return handler(args)
    except expected_errors() as err:
        if args.debug or os.environ.get("IIC_DEBUG") == "1":
            raise
        print(f"{args.command}: error: {error_line(err)}", file=sys.stderr)
        report = getattr(err, "report", None)
        if report is not None:  # a strict load's key report, in full
            print(str(report), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
