"""IIC / CMC pretraining (fine-tuning and the linear probe are in :mod:`iic_helpers.finetune`).

``pretrain(cfg)`` follows the original ``train_ssl.py`` step for step: one shared backbone
encodes the RGB clip (view 1), view 2 (residual frames, the RGB clip again, or flow) and the
intra-negative in three separate forward passes (each with its own BatchNorm statistics);
:class:`~iic_helpers.losses.MemoryBankNCE` scores them against the memory bank; SGD with a
MultiStepLR schedule steps once per epoch.

Each epoch's randomness (shuffling, clip positions, crops, intra-negatives, memory-bank
samples) is derived from ``(seed, epoch)``, so ``--resume`` reaches exactly the weights of an
uninterrupted run.
"""

from __future__ import annotations

import collections
import hashlib
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import Config, epoch_seed, resolve_device
from .data.builders import clip_dataset
from .distributed import (
    DistContext,
    barrier,
    gather,
    last_occurrence,
    mean_over_ranks,
    per_rank_batch,
    setup,
)
from .finetune import finetune, linear_probe
from .losses import MemoryBankNCE, NCECriterion, NCESoftmaxLoss
from .models import build_backbone
from .negatives import (
    intra_negative,
    repeat_frame,
    repeat_frame_index,
    shuffle_chunk_order,
    shuffle_chunks,
)
from .parallel_backward import MAX_VIEWS, parallel_backward
from .runs import locks_run_dir, pretrain_run_dir, read_csv_rows, write_csv_rows
from .views import residual

__all__ = [
    "finetune",
    "linear_probe",
    "pretrain",
    "PretrainState",
    "HISTORY_FIELDS",
    "read_history",
    "default_run_dir",
    "NonFiniteLossError",
    "LargeKWarning",
    "train_list_fingerprint",
    "negative_fn_name",
    "uses_bf16",
    "uses_parallel_backward",
    "pretrain_step",
    "wrap_data_parallel",
    "uniform_loss",
]

HISTORY_FIELDS = (
    "epoch",
    "loss",
    "loss_v1",
    "loss_v2",
    "pos_score_v1",
    "pos_score_v2",
    "feat_norm",
    "lr",
    "seconds",
)
VIEW2_CHOICES = ("res", "rgb", "u", "v")
INTRA_CHOICES = ("repeat", "shuffle", "none", "custom")
#: A user's intra-negative: ``(clips (B, C, T, H, W), generator) -> clips`` of the same shape.
NegativeFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint was left intact."""


class LargeKWarning(UserWarning):
    """``k`` is larger than the training set: negatives repeat (drawn with replacement)."""


def train_list_fingerprint(records: Any) -> dict[str, Any]:
    """``{"n", "sha256"}`` of the ordered training list (relative paths and labels).

    The memory bank's row ``i`` belongs to training video ``i``: a resumed run must see the
    same list in the same order. Paths are relative to the dataset root, so a moved dataset
    (``--data-root``) keeps its fingerprint.
    """
    h = hashlib.sha256()
    for r in records:
        h.update(f"{r.rel_path or r.video_id}\t{r.label}\n".encode())
    return {"n": len(records), "sha256": h.hexdigest()}


def default_run_dir(cfg: Config, kind: str = "pretrain") -> Path:
    """``runs/<preset>-<kind>-<intra>-<view2>-s<seed>`` (:func:`~.runs.pretrain_run_dir`)."""
    return pretrain_run_dir(cfg, kind)


class PretrainState:
    """Everything one pretraining run holds: model, optional centring head, contrast, optimiser.

    Built from a config and the number of training videos; ``state_dict()`` is the checkpoint.
    """

    def __init__(
        self,
        cfg: Config,
        n_data: int,
        device: torch.device,
        negative_fn: NegativeFn | None = None,
    ) -> None:
        _check_pretrain_config(cfg, negative_fn)
        self.cfg = cfg
        self.negative_fn = negative_fn
        self.device = device
        self.model = build_backbone(cfg.backbone, width=cfg.width).to(device)
        #: what the forward passes call: the model, or its DistributedDataParallel wrapper
        self.engine: nn.Module = self.model
        feat_dim = self.model.feature_dim
        # Centring (not in the original): BatchNorm without affine parameters on the features.
        self.head: nn.Module = (
            nn.BatchNorm1d(feat_dim, affine=False) if cfg.center_features else nn.Identity()
        ).to(device)
        self.contrast = MemoryBankNCE(
            feat_dim,
            n_data,
            k=cfg.k,
            temperature=cfg.temperature,
            momentum=cfg.nce_momentum,
            softmax=cfg.softmax,
            intra_negative=cfg.intra_negative != "none",
            normalize=cfg.normalize_features,
            # CMC (no intra-negative bank) has nothing to route a gradient through
            negative_gradient=cfg.negative_gradient and cfg.intra_negative != "none",
        ).to(device)
        self.criterion = NCESoftmaxLoss() if cfg.softmax else NCECriterion(n_data)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
        #: what the optimiser trains; the step's loss reaches them only through the features
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if any(True for _ in self.contrast.parameters()) or any(
            True for _ in self.head.parameters()
        ):
            raise RuntimeError("the memory bank and the centring head must hold no parameters")
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(cfg.lr_milestones), gamma=cfg.lr_gamma
        )
        self.epoch = 0
        #: history rows of the epochs done (saved in the checkpoint: the source of truth)
        self.history: list[dict[str, float]] = []
        #: fingerprint of the ordered training list (see :func:`train_list_fingerprint`)
        self.train_list: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        scheduler = self.scheduler.state_dict()
        scheduler["milestones"] = dict(scheduler["milestones"])  # Counter -> dict (safe load)
        return {
            "model": self.model.state_dict(),
            "head": self.head.state_dict(),
            "contrast": self.contrast.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": scheduler,
            "epoch": self.epoch,
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "history": [dict(row) for row in self.history],
            **({"train_list": dict(self.train_list)} if self.train_list else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.head.load_state_dict(state["head"])
        self.contrast.load_state_dict(state["contrast"])
        self.optimizer.load_state_dict(state["optimizer"])
        scheduler = dict(state["scheduler"])
        scheduler["milestones"] = collections.Counter(scheduler["milestones"])
        self.scheduler.load_state_dict(scheduler)
        self.epoch = int(state["epoch"])
        self.history = [dict(row) for row in state.get("history", [])]
        set_rng_state(state["rng"])

    def encode(self, clips: torch.Tensor) -> torch.Tensor:
        """Backbone + centring head: ``(B, C, T, H, W) -> (B, D)``."""
        return self.head(self.engine(clips))


def _check_pretrain_config(cfg: Config, negative_fn: NegativeFn | None = None) -> None:
    if cfg.epochs < 1:
        raise ValueError(f"epochs must be >= 1 (the total number of epochs), got {cfg.epochs}")
    if cfg.save_every < 1:
        raise ValueError(
            f"save_every must be >= 1 (save a checkpoint every N epochs), got {cfg.save_every}"
        )
    if cfg.view2 not in VIEW2_CHOICES:
        raise ValueError(f"view2 must be one of {VIEW2_CHOICES}, got {cfg.view2!r}")
    if cfg.intra_negative not in INTRA_CHOICES:
        raise ValueError(
            f"intra_negative must be one of {INTRA_CHOICES}, got {cfg.intra_negative!r}"
        )
    name = cfg.intra_negative_fn
    if cfg.intra_negative == "custom" and (
        negative_fn is None or negative_fn_name(negative_fn) != name
    ):
        raise ValueError(
            f"this run's intra-negative is the function {name!r}: pass it to "
            f"pretrain(..., intra_negative_fn={name})"
        )
    if cfg.intra_negative == "shuffle" and cfg.clip_len % 4:
        raise ValueError(
            f"intra_negative='shuffle' needs clip_len divisible by 4, got {cfg.clip_len}"
        )


def _views(
    batch: torch.Tensor | dict[str, torch.Tensor], view2: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(view 1 RGB, view 2) from a loader batch; ``(B, C, T, H, W)`` each."""
    if isinstance(batch, dict):
        rgb = batch["rgb"]
        return rgb, (batch[view2] if view2 in ("u", "v") else _second_view(rgb, view2))
    return batch, _second_view(batch, view2)


def _second_view(rgb: torch.Tensor, view2: str) -> torch.Tensor:
    if view2 == "res":
        return residual(rgb)
    if view2 == "rgb":
        return rgb
    raise ValueError(f"view2={view2!r} needs flow clips: build the dataset with that view")


def uses_bf16(cfg: Config, device: torch.device) -> bool:
    """Whether pretraining autocasts to bf16: ``amp`` on CUDA, ``cpu_bf16`` on the CPU.

    Both are off in the ``paper`` preset (the original trains in fp32).
    """
    return (cfg.amp and device.type == "cuda") or (cfg.cpu_bf16 and device.type == "cpu")


def _global_draws(
    state: PretrainState,
    view1: torch.Tensor,
    index: torch.Tensor,
    generator: torch.Generator,
    ctx: DistContext,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Draws for the whole global batch, identical on every rank; this rank's slice.

    Returns ``(intra-negative clips of this rank or None, global index (N*B,), this rank's
    bank rows (B, k+1))``: the intra-negative choices for all ``N*B`` clips, then the
    ``k`` negative rows of all of them, come from ``generator`` (seeded alike on every
    rank), so one process with the concatenated batch draws exactly the same.
    """
    cfg = state.cfg
    b, t = view1.shape[0], view1.shape[2]
    lo = ctx.rank * b
    negatives = None
    if cfg.intra_negative == "repeat":
        frame = repeat_frame_index(b * ctx.world_size, t, generator, view1.device)
        negatives = repeat_frame(view1, frame[lo : lo + b])
    elif cfg.intra_negative == "shuffle":
        order = shuffle_chunk_order(b * ctx.world_size, generator, view1.device)
        negatives = shuffle_chunks(view1, order[lo : lo + b])
    global_index = gather(index, ctx)
    contrast = state.contrast
    rows = torch.randint(
        0,
        contrast.n_data,
        (global_index.numel(), contrast.k + 1),
        generator=generator,
        device=generator.device,
    ).to(contrast.memory_v1.device)
    rows[:, 0] = global_index.to(rows.device)
    return negatives, global_index, rows[lo : lo + b]


def pretrain_step(
    state: PretrainState,
    batch: torch.Tensor | dict[str, torch.Tensor],
    index: torch.Tensor,
    generator: torch.Generator,
    ctx: DistContext | None = None,
) -> dict[str, float]:
    """One optimisation step; returns the step's statistics. Raises on a non-finite loss.

    With ``ctx`` (data-parallel training, :mod:`iic_helpers.distributed`) the batch is this
    rank's slice of the global batch: intra-negatives and bank rows are drawn for the whole
    global batch from ``generator`` (identical on every rank), and the memory banks are
    updated with the features and indices of every rank, so they stay identical.
    """
    cfg, device = state.cfg, state.device
    if isinstance(batch, dict):
        batch = {name: clip.to(device, non_blocking=True) for name, clip in batch.items()}
    else:
        batch = batch.to(device, non_blocking=True)
    view1, view2 = _views(batch, cfg.view2)
    index = index.to(device)
    sample_idx = global_index = None
    if ctx is not None:
        if not cfg.softmax:
            raise ValueError("data-parallel pretraining needs softmax=True (Z is set per rank)")
        negatives, global_index, sample_idx = _global_draws(state, view1, index, generator, ctx)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(cfg, device)):
        feat_v1 = state.encode(view1)
        feat_v2 = feat_v1 if cfg.view2 == "rgb" else state.encode(view2)
        feat_neg = None
        if cfg.intra_negative != "none":
            if ctx is None and state.negative_fn is not None:
                negatives = _custom_negatives(state.negative_fn, view1, generator)
            elif ctx is None:
                negatives = intra_negative(view1, cfg.intra_negative, generator)
            if state.contrast.negative_gradient:
                feat_neg = state.encode(negatives)
            else:  # the original: only updates memory_neg (and BatchNorm statistics)
                feat_neg = state.encode(negatives).detach()
    feat_v1, feat_v2 = feat_v1.float(), feat_v2.float()
    feat_neg = None if feat_neg is None else feat_neg.float()
    out_v1, out_v2 = state.contrast(
        feat_v1, feat_v2, index, feat_neg, sample_idx, update=ctx is None
    )
    if ctx is not None:  # the banks learn the whole global batch, on every rank alike
        keep = last_occurrence(global_index)
        state.contrast.update_memory(
            global_index[keep],
            gather(feat_v1.detach(), ctx)[keep],
            gather(feat_v2.detach(), ctx)[keep],
            None if feat_neg is None else gather(feat_neg.detach(), ctx)[keep],
        )
    loss_v1, loss_v2 = state.criterion(out_v1).sum(), state.criterion(out_v2).sum()
    loss = loss_v1 + loss_v2
    stats = {
        "loss": loss.item(),
        "loss_v1": loss_v1.item(),
        "loss_v2": loss_v2.item(),
        "pos_score_v1": out_v1[:, 0].mean().item(),
        "pos_score_v2": out_v2[:, 0].mean().item(),
        "feat_norm": feat_v1.detach().norm(dim=1).mean().item(),
    }
    stats = mean_over_ranks(stats, ctx)  # every rank sees the same (global) numbers
    if not math.isfinite(stats["loss"]):
        raise NonFiniteLossError(f"loss is {stats['loss']}")
    state.optimizer.zero_grad(set_to_none=True)
    graphs: list[torch.Tensor] = []  # each encoded view with a gradient, once (view2 "rgb")
    for feat in (feat_v1, feat_v2, feat_neg):
        if feat is not None and feat.requires_grad and all(feat is not g for g in graphs):
            graphs.append(feat)
    if uses_parallel_backward(cfg, device, ctx, len(graphs)):
        parallel_backward(loss, graphs, state.params)
    else:
        loss.backward()
    state.optimizer.step()
    return stats


def uses_parallel_backward(
    cfg: Config, device: torch.device, ctx: DistContext | None, n_graphs: int
) -> bool:
    """Whether a step's backward pass runs one view per one-thread worker
    (:mod:`~iic_helpers.parallel_backward`): ``cpu_parallel_backward``, on the CPU, in fp32,
    in one process, with at least two views that have a gradient, and with 2 or 3 intra-op
    threads (measured with 2): the two or three one-thread workers then share the cores
    the step's own threads would use. With more threads (not measured) the plain
    ``loss.backward()`` keeps every thread busy."""
    return (
        cfg.cpu_parallel_backward
        and device.type == "cpu"
        and ctx is None
        and not uses_bf16(cfg, device)
        and 2 <= torch.get_num_threads() <= MAX_VIEWS
        and n_graphs >= 2
    )


def negative_fn_name(fn: NegativeFn) -> str:
    """The name a user's intra-negative function is recorded under in ``config.json``."""
    return getattr(fn, "__name__", type(fn).__name__)


def _custom_negatives(
    fn: NegativeFn, clips: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """``fn(clips, generator)``, checked to return a batch shaped like ``clips``."""
    negatives = fn(clips, generator)
    if not isinstance(negatives, torch.Tensor) or negatives.shape != clips.shape:
        got = tuple(negatives.shape) if isinstance(negatives, torch.Tensor) else type(negatives)
        raise ValueError(
            f"intra_negative_fn {negative_fn_name(fn)!r} must return a tensor shaped like its "
            f"input {tuple(clips.shape)}, got {got}"
        )
    return negatives


def read_history(run_dir: str | Path) -> list[dict[str, float]]:
    """Rows of ``<run_dir>/history.csv`` as dicts of floats."""
    return read_csv_rows(Path(run_dir) / "history.csv")


def _saved_history(saved: dict[str, Any], path: Path) -> list[dict[str, float]]:
    """History rows of a checkpoint: its own, or (older checkpoints without them) the first
    ``epoch`` rows of ``history.csv``."""
    if "history" in saved:
        return [dict(row) for row in saved["history"]]
    return read_csv_rows(path)[: int(saved["epoch"])] if path.exists() else []


def _check_resume(saved: dict[str, Any], ckpt_path: Path, cfg: Config, fingerprint: dict) -> None:
    """Refuse a resume that cannot continue the saved run exactly."""
    done = int(saved["epoch"])
    if cfg.epochs < done:
        raise ValueError(
            f"{ckpt_path} has {done} epochs done; --epochs {cfg.epochs} is fewer (--epochs is "
            "the total): pass a larger --epochs, or choose another --run-dir for a shorter run"
        )
    old = saved.get("train_list")
    if old is not None and dict(old) != fingerprint:
        raise ValueError(
            f"cannot resume {ckpt_path}: the training list under {cfg.data_root} "
            f"({fingerprint['n']} videos, fingerprint {fingerprint['sha256'][:12]}) is not the "
            f"one it was trained on ({old['n']} videos, {str(old['sha256'])[:12]}); the memory "
            "bank's rows belong to the old list in its order. Use the same split list, or "
            "start a new run"
        )
    bank = saved.get("contrast", {}).get("memory_v1")
    if old is None and bank is not None and bank.shape[0] != fingerprint["n"]:
        raise ValueError(
            f"cannot resume {ckpt_path}: its memory bank has {bank.shape[0]} rows but the "
            f"training list under {cfg.data_root} has {fingerprint['n']} videos. Use the same "
            "split list, or start a new run"
        )


@locks_run_dir("pretrain", lambda cfg, **_: default_run_dir(cfg))
def pretrain(
    cfg: Config,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    max_steps_per_epoch: int | None = None,
    progress: bool = True,
    intra_negative_fn: NegativeFn | None = None,
) -> Path:
    """IIC (or CMC, with ``intra_negative="none"``) pretraining; returns the run directory.

    Args:
        cfg: the configuration (``make_config("tiny", ...)``); ``cfg.epochs`` is the total.
        run_dir: where ``config.json``, ``checkpoint.pt`` and ``history.csv`` go.
        resume: continue the run in ``run_dir`` from its saved epoch up to ``cfg.epochs``
            with the saved configuration; ``epochs`` (not fewer than done), ``data_root``
            (the same ordered training list, checked by fingerprint) and ``device`` come
            from ``cfg``.
        on_epoch_end: called with each epoch's history row (e.g. to redraw a loss curve).
        max_steps_per_epoch: cap the steps per epoch (quick mode).
        progress: show a tqdm progress bar.
        intra_negative_fn: your own intra-negative, ``(clips, generator) -> clips`` on
            ``(B, C, T, H, W)`` batches; recorded as ``intra_negative="custom"`` with its
            name in ``config.json`` (``intra_negative_fn``); pass it again to resume.
    """
    if intra_negative_fn is not None:
        cfg = cfg.replace(
            intra_negative="custom", intra_negative_fn=negative_fn_name(intra_negative_fn)
        )
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    ckpt_path = run_dir / "checkpoint.pt"
    saved = None
    if resume:
        saved = load_checkpoint(ckpt_path)
        saved_cfg = Config.from_dict(saved["config"])
        taken = ("epochs", "data_root", "device")
        differing = {
            k for k, v in saved_cfg.to_dict().items() if k not in taken and cfg.to_dict()[k] != v
        }
        if differing:
            print(f"pretrain: resuming with the saved configuration (ignoring {sorted(differing)})")
        cfg = saved_cfg.replace(**{k: getattr(cfg, k) for k in taken})
    elif ckpt_path.exists():
        raise FileExistsError(
            f"{ckpt_path} exists: pass resume=True (--resume) to continue it, or choose another "
            "run directory"
        )
    _check_pretrain_config(cfg, intra_negative_fn)
    ctx = setup(cfg.device)  # torchrun: one process per GPU (iic_helpers.distributed)
    if ctx is not None and intra_negative_fn is not None:
        raise ValueError(
            "intra_negative_fn works in single-process runs only; data-parallel runs draw "
            "'repeat' or 'shuffle' negatives for the global batch"
        )
    main = ctx is None or ctx.is_main  # only rank 0 writes
    device = ctx.device if ctx is not None else resolve_device(cfg.device)
    batch_size = cfg.batch_size if ctx is None else per_rank_batch(cfg.batch_size, ctx.world_size)
    dataset = clip_dataset(cfg, subset="train", mode="train")
    fingerprint = train_list_fingerprint(dataset.records)
    if saved is not None:
        _check_resume(saved, ckpt_path, cfg, fingerprint)
    if cfg.k > len(dataset):
        warnings.warn(
            f"k={cfg.k} negatives per sample but only {len(dataset)} training videos: "
            "negatives are drawn with replacement (as in the original), so each one repeats "
            f"about {cfg.k / len(dataset):.1f} times per sample",
            LargeKWarning,
            stacklevel=3,
        )
    torch.manual_seed(cfg.seed)  # weights and memory-bank initialisation
    state = PretrainState(cfg, len(dataset), device, intra_negative_fn)
    state.train_list = fingerprint
    last_saved = None
    if saved is not None:
        state.load_state_dict(saved)
        state.history = _saved_history(saved, run_dir / "history.csv")
        last_saved = state.epoch
        if main:
            write_csv_rows(run_dir / "history.csv", HISTORY_FIELDS, state.history)
        if state.epoch == cfg.epochs:
            if main:
                print(f"pretrain: {ckpt_path} already has {cfg.epochs} epochs; nothing to do")
            return run_dir
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_json(run_dir / "config.json")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if cfg.channels_last:  # 1.5x faster for the tiny preset on the CPU, same numbers to 1e-5
        state.model.to(memory_format=torch.channels_last_3d)
    if ctx is not None:
        wrap_data_parallel(state, ctx)

    epochs = range(state.epoch, cfg.epochs)
    bar = tqdm(epochs, desc=f"pretrain {cfg.intra_negative}", disable=not (progress and main))
    for epoch in bar:
        start = time.perf_counter()
        seed = epoch_seed(cfg.seed, epoch)
        rank = 0 if ctx is None else ctx.rank
        torch.manual_seed(seed + rank)  # clip positions and crops differ between ranks
        sampler = None
        if ctx is not None:  # reseeded every epoch; pads the last round, drops nothing
            sampler = DistributedSampler(
                dataset, ctx.world_size, ctx.rank, shuffle=True, seed=cfg.seed, drop_last=False
            )
            sampler.set_epoch(epoch)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            drop_last=cfg.drop_last,
            num_workers=cfg.num_workers,
            pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(seed + rank),
            persistent_workers=False,
        )
        # the same on every rank: intra-negative choices and memory-bank rows
        generator = torch.Generator(device=device).manual_seed(seed + 1)
        state.engine.train()
        state.head.train()
        totals: dict[str, float] = collections.defaultdict(float)
        steps = 0
        for batch, _, index in loader:
            try:
                stats = pretrain_step(state, batch, index, generator, ctx)
            except NonFiniteLossError as err:
                kept = (
                    f"The last good checkpoint ({ckpt_path}, epoch {last_saved}) is intact."
                    if last_saved is not None
                    else "No checkpoint was written yet."
                )
                raise NonFiniteLossError(
                    f"{err} at epoch {epoch + 1}, step {steps + 1}; stopped. {kept} Lower the "
                    "learning rate or check the data."
                ) from None
            for key, value in stats.items():
                totals[key] += value
            steps += 1
            if max_steps_per_epoch is not None and steps >= max_steps_per_epoch:
                break
        lr = state.optimizer.param_groups[0]["lr"]
        state.scheduler.step()
        state.epoch = epoch + 1
        row = {key: value / max(steps, 1) for key, value in totals.items()}
        row.update(epoch=state.epoch, lr=lr, seconds=time.perf_counter() - start)
        state.history.append(row)
        if state.epoch % cfg.save_every == 0 or state.epoch == cfg.epochs:
            if main:
                save_checkpoint(state.state_dict(), ckpt_path)
            last_saved = state.epoch
        if main:
            write_csv_rows(run_dir / "history.csv", HISTORY_FIELDS, state.history)
        bar.set_postfix(loss=f"{row['loss']:.3f}")
        if on_epoch_end is not None and main:
            on_epoch_end(row)
    barrier(ctx)  # rank 0's files are complete when any rank returns
    return run_dir


def wrap_data_parallel(state: PretrainState, ctx: DistContext) -> None:
    """Wrap the backbone in ``DistributedDataParallel`` (``state.engine``).

    BatchNorm normalizes with each rank's own batch, as one GPU per process would (its
    running statistics are rank 0's, broadcast at each forward: DDP's default); with
    ``cfg.sync_batchnorm`` (CUDA only) it uses the statistics of the global batch.
    """
    if state.cfg.sync_batchnorm:
        if state.device.type != "cuda":
            raise ValueError("sync_batchnorm=true needs CUDA (SyncBatchNorm has no CPU kernel)")
        state.model = nn.SyncBatchNorm.convert_sync_batchnorm(state.model)
    device_ids = [state.device] if state.device.type == "cuda" else None
    state.engine = DistributedDataParallel(state.model, device_ids=device_ids)


def uniform_loss(cfg: Config) -> float:
    """The summed two-view softmax loss when all scores are equal: ``2 ln(columns)``."""
    columns = 2 * (cfg.k + 1) if cfg.intra_negative != "none" else cfg.k + 1
    return 2 * math.log(columns)
