"""Action recognition from a (pre)trained backbone: fine-tuning and the linear probe.

``finetune(cfg, checkpoint)`` follows the original ``ft_classify.py`` recipe (SGD, momentum
0.9, two parameter groups: layers named ``linear``/``conv4``/``conv5`` at ``ft_lr``, the
rest at ``ft_base_lr``; ReduceLROnPlateau on the validation loss) with the evaluation bugs
fixed: validation uses eval transforms, the test accuracy weights every video once (logits
averaged over its ``eval_clips`` clips), and both learning rates take effect.

``linear_probe(cfg, checkpoint)`` freezes the backbone, averages its pooled features over
each video's clips and fits a logistic regression: the quick standard protocol.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm.auto import tqdm

from .checkpoint import load_backbone, save_checkpoint, source_name
from .config import Config, epoch_seed, resolve_device
from .data.builders import clip_dataset, resolve_data_root
from .data.splits import read_classes, split_format
from .distributed import (
    DistContext,
    barrier,
    gather_objects,
    mean_over_ranks,
    per_rank_batch,
    setup,
)
from .features import check_finite, extract_features
from .probe import linear_probe_accuracy
from .runs import append_csv_row, finetune_run_dir, locks_run_dir, update_results
from .views import residual

__all__ = [
    "FINETUNE_FIELDS",
    "finetune",
    "linear_probe",
    "video_accuracy",
    "predict_videos",
    "parameter_groups",
    "dataset_kind",
    "validation_size",
    "is_better",
]

FINETUNE_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
_TOP_LAYERS = ("linear", "conv4", "conv5")
FT_VIEWS = ("rgb", "res")


def parameter_groups(model: nn.Module, ft_lr: float, base_lr: float) -> list[dict[str, Any]]:
    """The original's two groups: names containing linear/conv4/conv5 get ``ft_lr``."""
    top, rest = [], []
    for name, param in model.named_parameters():
        (top if any(key in name for key in _TOP_LAYERS) else rest).append(param)
    return [{"params": rest, "lr": base_lr}, {"params": top, "lr": ft_lr}]


def video_accuracy(video_logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of videos whose clip-averaged logits pick the right class.

    Args:
        video_logits: ``(N, num_clips, num_classes)`` or ``(N, num_classes)``.
        labels: ``(N,)``.

    Every video counts once (the original weighted batches of 16 videos equally, so the last
    partial batch was over-weighted).
    """
    if video_logits.dim() == 3:
        video_logits = video_logits.mean(dim=1)
    labels = torch.as_tensor(labels).view(-1)
    if video_logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{video_logits.shape[0]} videos but {labels.shape[0]} labels")
    return (video_logits.argmax(dim=1) == labels).float().mean().item()


def _input(clips: torch.Tensor, view: str) -> torch.Tensor:
    if view == "res":
        return residual(clips)
    if view == "rgb":
        return clips
    raise ValueError(f"ft_view must be 'rgb' or 'res', got {view!r}")


@torch.no_grad()
def predict_videos(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    view: str = "rgb",
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = False,
    source: str = "the model",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of every clip of every video of an eval-mode dataset.

    Returns:
        ``(logits (N, num_clips, num_classes), labels (N,))``; no video is dropped.

    Raises:
        NonFiniteFeaturesError: a logit is NaN or infinite (naming ``source``).
    """
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    all_logits, all_labels = [], []
    for clips, labels, _ in tqdm(loader, desc="predict", disable=not progress, leave=False):
        b, n = clips.shape[:2]
        logits = model(_input(clips.flatten(0, 1).to(device), view))
        all_logits.append(logits.float().view(b, n, -1).cpu())
        all_labels.append(torch.as_tensor(labels).view(-1))
    logits = torch.cat(all_logits)
    check_finite(logits, "logits", source)
    return logits, torch.cat(all_labels)


def _init_backbone(cfg: Config, checkpoint: Any, num_classes: int) -> tuple[nn.Module, str]:
    """A classifier initialised from a checkpoint (ours or original) or at random, and a
    description of its initialisation (:func:`~iic_helpers.checkpoint.load_backbone`; the
    caller has seeded torch)."""
    model, obj = load_backbone(cfg, checkpoint, num_classes=num_classes, seed=False)
    if obj is None:
        return model, "random initialisation"
    return model, f"{len(model.load_report.loaded)} tensors from {checkpoint}"


#: Validation videos the original ``ft_classify.py`` holds out of the training list.
ORIGINAL_VAL_VIDEOS = {"ucf101": 800, "hmdb51": 400}
#: A small dataset never gives more than this fraction of its training list to validation.
VAL_MAX_FRACTION = 0.2
SELECTIONS = ("loss", "accuracy")


def dataset_kind(root: str | Path, split: int = 1) -> str:
    """``"hmdb51"`` for HMDB51 (its official per-class lists, or any lists naming 51
    classes, as the IIC authors' UCF101-format conversion), else ``"ucf101"``."""
    if split_format(root, split) == "hmdb51" or len(read_classes(root, split)) == 51:
        return "hmdb51"
    return "ucf101"


def validation_size(n_train: int, cfg: Config, dataset: str = "ucf101") -> int:
    """How many of ``n_train`` training videos fine-tuning holds out for validation.

    ``cfg.ft_val_videos``: ``-1`` = the original's count for the dataset (800 for UCF101
    and other datasets, 400 for HMDB51; see :func:`dataset_kind`), ``N > 0`` = N videos, ``0`` =
    ``round(cfg.ft_val_fraction * n_train)``. Rule for small datasets: never more than
    :data:`VAL_MAX_FRACTION` of the list (fraction mode excepted) and never zero videos;
    at least one video is left to train on.
    """
    if n_train < 2:
        raise ValueError(
            f"fine-tuning needs at least 2 training videos (1 to train, 1 to validate), "
            f"the split list has {n_train}"
        )
    if cfg.ft_val_videos == 0:
        if not 0 < cfg.ft_val_fraction < 1:
            raise ValueError(f"ft_val_fraction must be in (0, 1), got {cfg.ft_val_fraction}")
        wanted = max(1, round(cfg.ft_val_fraction * n_train))
        return min(wanted, n_train - 1)
    if cfg.ft_val_videos == -1:
        wanted = ORIGINAL_VAL_VIDEOS.get(dataset, ORIGINAL_VAL_VIDEOS["ucf101"])
    elif cfg.ft_val_videos > 0:
        wanted = cfg.ft_val_videos
    else:
        raise ValueError(f"ft_val_videos must be -1, 0 or a count, got {cfg.ft_val_videos}")
    cap = max(1, int(VAL_MAX_FRACTION * n_train))
    return min(wanted, cap, n_train - 1)


def _split_validation(n: int, n_val: int, seed: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def is_better(row: dict[str, float], best: dict[str, float] | None, selection: str) -> bool:
    """Whether an epoch's ``row`` (``val_loss``, ``val_acc``) beats the best so far.

    ``"loss"``: strictly lower validation loss (the original keeps that epoch);
    ``"accuracy"``: strictly higher validation accuracy. The first epoch always wins.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"ft_select must be one of {SELECTIONS}, got {selection!r}")
    if best is None:
        return True
    if selection == "loss":
        return row["val_loss"] < best["val_loss"]
    return row["val_acc"] > best["val_acc"]


@locks_run_dir("finetune", lambda cfg, **_: finetune_run_dir(cfg))
def finetune(
    cfg: Config,
    checkpoint: str | Path | dict | None = None,
    run_dir: str | Path | None = None,
    *,
    max_videos: int | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
) -> Path:
    """Fine-tune a backbone with a linear classifier on ``cfg.data_root``; returns the run dir.

    Writes ``config.json``, ``history.csv``, ``best.pt`` (the selected epoch:
    lowest validation loss with ``ft_select="loss"``, as the original, or highest validation
    accuracy; ``{"model", "epoch", "config"}``) and ``results.json`` with ``"finetune"`` =
    ``{"test_accuracy", "best_epoch", "best_val_accuracy", "best_val_loss", "selection",
    "n_val", "n_train", "view", "init", "n_test"}``, plus ``test_predictions.npz`` (clip
    logits and labels of every test video). The input is ``cfg.ft_view`` (``"res"``: residual
    clips, the original's default; ``"rgb"``). ``on_epoch_end`` is called with each epoch's
    history row (e.g. to print progress).
    """
    run_dir = Path(run_dir) if run_dir is not None else finetune_run_dir(cfg)
    ctx = setup(cfg.device)  # torchrun: data-parallel, global batch cfg.batch_size
    main = ctx is None or ctx.is_main  # only rank 0 writes
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_json(run_dir / "config.json")
    device = ctx.device if ctx is not None else resolve_device(cfg.device)
    batch_size = cfg.batch_size if ctx is None else per_rank_batch(cfg.batch_size, ctx.world_size)
    root = resolve_data_root(cfg.data_root)
    classes = read_classes(root, cfg.split)
    if cfg.ft_view not in FT_VIEWS:
        raise ValueError(f"ft_view must be one of {FT_VIEWS}, got {cfg.ft_view!r}")
    torch.manual_seed(cfg.seed)
    model, init = _init_backbone(cfg, checkpoint, len(classes))
    model = model.to(device)
    engine: nn.Module = model
    if ctx is not None:
        if cfg.sync_batchnorm:
            if device.type != "cuda":
                raise ValueError("sync_batchnorm=true needs CUDA (SyncBatchNorm has no CPU kernel)")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        engine = DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )

    # RGB clips only, whatever view 2 the backbone was pretrained with (flow included)
    train_full = clip_dataset(cfg, "train", "train", max_videos=max_videos, views=("rgb",))
    eval_full = clip_dataset(cfg, "train", "eval", max_videos=max_videos)
    n_val = validation_size(len(train_full), cfg, dataset_kind(root, cfg.split))
    train_idx, val_idx = _split_validation(len(train_full), n_val, cfg.seed)
    train_set, val_set = Subset(train_full, train_idx), Subset(eval_full, val_idx)
    test_set = clip_dataset(cfg, "test", "eval", max_videos=max_videos)

    optimizer = torch.optim.SGD(
        parameter_groups(model, cfg.ft_lr, cfg.ft_base_lr),
        momentum=cfg.momentum,
        weight_decay=cfg.ft_weight_decay,
    )
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.1, patience=cfg.ft_patience, min_lr=1e-5
    )
    history_path = run_dir / "history.csv"
    if main:
        history_path.unlink(missing_ok=True)
    best: dict[str, Any] | None = None
    bar = tqdm(range(cfg.ft_epochs), desc="finetune", disable=not (progress and main))
    rank = 0 if ctx is None else ctx.rank
    for epoch in bar:
        start = time.perf_counter()
        torch.manual_seed(epoch_seed(cfg.seed, epoch, epoch_stride=1) + rank)
        sampler = None
        if ctx is not None:
            sampler = DistributedSampler(train_set, ctx.world_size, ctx.rank, seed=cfg.seed)
            sampler.set_epoch(epoch)
        loader = DataLoader(
            train_set,
            batch_size=batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            num_workers=cfg.num_workers,
            generator=torch.Generator().manual_seed(
                epoch_seed(cfg.seed, epoch, seed_stride=1, epoch_stride=1) + rank
            ),
        )
        engine.train()
        total_loss, correct, seen = 0.0, 0, 0
        for clips, labels, _ in loader:
            clips, labels = clips.to(device), torch.as_tensor(labels).to(device)
            logits = engine(_input(clips, cfg.ft_view))
            loss = F.cross_entropy(logits, labels)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"fine-tuning loss is not finite ({loss.item()}) at epoch {epoch + 1} "
                    f"({source_name(checkpoint)}); lower ft_lr, or check its weights"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
        sums = {"loss": total_loss, "correct": float(correct), "seen": float(seen)}
        sums = mean_over_ranks(sums, ctx)  # ratios of rank means = ratios of sums
        total_loss, correct, seen = sums["loss"], sums["correct"], sums["seen"]
        val_logits, val_labels = _predict(
            model, val_set, cfg.ft_view, device, ctx, source=source_name(checkpoint)
        )
        val_loss = F.cross_entropy(val_logits.mean(1), val_labels).item()
        val_acc = video_accuracy(val_logits, val_labels)
        plateau.step(val_loss)
        row = {
            "epoch": epoch + 1,
            "train_loss": total_loss / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": optimizer.param_groups[1]["lr"],
            "seconds": time.perf_counter() - start,
        }
        if main:
            append_csv_row(history_path, FINETUNE_FIELDS, row)
            if on_epoch_end is not None:
                on_epoch_end(row)
        if is_better(row, best, cfg.ft_select):  # the same decision on every rank
            best = dict(row, state=copy.deepcopy(model.state_dict()))
            if main:
                save_checkpoint(
                    {"model": best["state"], "epoch": epoch + 1, "config": cfg.to_dict()},
                    run_dir / "best.pt",
                )
        bar.set_postfix(val_acc=f"{val_acc:.2f}")

    if best is None:
        raise ValueError(f"ft_epochs must be >= 1, got {cfg.ft_epochs}")
    model.load_state_dict(best["state"])
    test_logits, test_labels = _predict(
        model, test_set, cfg.ft_view, device, ctx, source=source_name(checkpoint)
    )
    results = {
        "finetune": {
            "test_accuracy": video_accuracy(test_logits, test_labels),
            "best_epoch": int(best["epoch"]),
            "best_val_accuracy": best["val_acc"],
            "best_val_loss": best["val_loss"],
            "selection": cfg.ft_select,
            "view": cfg.ft_view,
            "n_train": len(train_idx),
            "n_val": len(val_idx),
            "init": init,
            "n_test": len(test_labels),
        }
    }
    if main:
        np.savez_compressed(
            run_dir / "test_predictions.npz",
            logits=test_logits.numpy(),
            labels=test_labels.numpy(),
            classes=np.array(classes),
        )
        update_results(run_dir, results)
    barrier(ctx)
    return run_dir


def _predict(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    view: str,
    device: torch.device,
    ctx: DistContext | None,
    *,
    source: str = "the model",
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`predict_videos` over the whole dataset; with several ranks each predicts every
    N-th video and all ranks receive every video's logits, in dataset order."""
    kwargs = dict(view=view, device=device, source=source)
    if ctx is None or not ctx.distributed:
        return predict_videos(model, dataset, **kwargs)
    positions = list(range(ctx.rank, len(dataset), ctx.world_size))
    mine = (positions, None, None)
    if positions:
        mine = (positions, *predict_videos(model, Subset(dataset, positions), **kwargs))
    parts = [part for part in gather_objects(mine, ctx) if part[0]]
    order = torch.tensor([p for part in parts for p in part[0]]).argsort()
    return (
        torch.cat([part[1] for part in parts])[order],
        torch.cat([part[2] for part in parts])[order],
    )


@locks_run_dir("linear-probe", lambda **_: None)
def linear_probe(
    cfg: Config,
    checkpoint: str | Path | dict | None = None,
    run_dir: str | Path | None = None,
    *,
    view: str = "rgb",
    max_videos: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Frozen-backbone linear probe: pooled features averaged over clips + logistic regression.

    Returns (and, with ``run_dir``, merges into ``results.json``) ``{"linear_probe":
    {"accuracy", "view", "init"}}``; accuracy is per test video.
    """
    device = resolve_device(cfg.device)
    model, obj = load_backbone(cfg, checkpoint, strict=False)
    kwargs = dict(views=(view,), features="pool", device=device, progress=progress)
    train_feats, train_labels = extract_features(
        model, clip_dataset(cfg, "train", "eval", max_videos=max_videos), **kwargs
    )
    test_feats, test_labels = extract_features(
        model, clip_dataset(cfg, "test", "eval", max_videos=max_videos), **kwargs
    )
    accuracy = linear_probe_accuracy(
        train_feats[view].mean(1),
        train_labels,
        test_feats[view].mean(1),
        test_labels,
        seed=cfg.seed,
    )
    results = {
        "linear_probe": {
            "accuracy": accuracy,
            "view": view,
            "init": "random" if obj is None else str(checkpoint),
            "n_test": int(len(test_labels)),
        }
    }
    if run_dir is not None:
        update_results(run_dir, results)
    return results
