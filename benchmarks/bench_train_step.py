"""Benchmark: one IIC pretraining step per sample, ours against an original-style baseline.

A step is: forward passes of the RGB clip (view 1), its residual frames (view 2) and the
intra-negative ("repeat") through one shared R3D, ``MemoryBankNCE`` scoring and memory
update, the softmax loss, backward and an SGD step. Inputs are random clips (data loading
is measured by ``bench_data_loading.py``).

Variants (a name joins tokens with ``+``, e.g. ``concat2+bf16``):

* ``baseline``: in the style of the original ``train_ssl.py``: the intra-negative built by a
  per-sample, per-frame Python loop (frames drawn from the same generator as ours, so the
  numbers are identical), three forward passes in fp32 NCDHW, the negative's autograd
  graph kept alive until the end of the step.
* ``ours``: :func:`iic_helpers.train.pretrain_step`, exactly as ``pretrain()`` calls it on
  the CPU (vectorised negatives; negative features detached unless the preset sets
  ``negative_gradient``, as the tiny preset does; the model in ``channels_last_3d``, the
  package default ``Config.channels_last``); ``ours+ncdhw``: the same in the default
  NCDHW memory format (the package before this benchmark).
* ``nograd``: the negative's forward pass under ``torch.no_grad()`` (same numbers: without
  ``negative_gradient`` the negative only updates the memory bank and BatchNorm running
  statistics); not applicable with ``negative_gradient``.
* ``concat2``: one forward pass over ``cat(view 1, view 2)``, the negative in its own;
  ``concat3``: one pass over all three. **Not faithful**: BatchNorm then normalizes with
  statistics over 2B (3B) mixed samples instead of B samples of one view, which changes
  the features and the running statistics (the original used per-view statistics).
* ``compile``: the backbone (``PretrainState.engine``) through ``torch.compile`` (inductor,
  needs a C++ compiler); ``first_step_s`` then includes the compilation. Not a package
  option: see RESULTS.md (no gain on AVX-512; a NaN loss on emulated AVX2).
* ``cl``: model in ``channels_last_3d`` (for the non-package variants); ``bf16``:
  ``torch.autocast("cpu", bfloat16)`` around the forward passes (the loss and memory bank
  stay fp32); ``t1`` / ``t2``: 1 or 2 intra-op threads.

Achieved GFLOP/s use the reference FLOP count (conv + linear multiply-adds x 2, counted with
forward hooks; R3D at 16x112x112: 39.77 GFLOP per clip forward, backward ~2x forward):
per sample and step, 3 forward passes + 2 backward passes = 7x the forward count (9x with
``negative_gradient``, where the negative is back-propagated too). ``concat3`` without
``negative_gradient`` really does 9x (its backward also runs over the negative rows); its
GFLOP/s count only the useful 7x.

Usage::

    .venv/bin/python benchmarks/bench_train_step.py            # both models, both ISAs
    .venv/bin/python benchmarks/bench_train_step.py --models tiny --variants baseline,ours
    .venv/bin/python benchmarks/bench_train_step.py --isa native   # native instruction set only

``--isa both`` (the default) runs the benchmark natively, then again in a child process
limited to AVX2 (``--isa avx2``): results/train_step.json and results/train_step_avx2.json
(see ``benchmarks/_common.py``).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from _common import (
    add_isa_argument,
    command_line,
    cpu_flags,
    format_table,
    machine_info,
    peak_rss_mib,
    reset_peak_rss,
    result_name,
    rss_mib,
    run_isas,
    warn_if_busy,
    write_json,
)
from torch import nn

from iic_helpers.config import make_config
from iic_helpers.models import build_backbone
from iic_helpers.negatives import intra_negative
from iic_helpers.train import PretrainState, pretrain_step
from iic_helpers.views import residual

#: FLOPs of one R3D forward pass at 16x112x112, width 64 (reference/models.json).
REFERENCE_R3D_FLOPS = 39_774_715_904

#: Model settings: the tiny preset as shipped, the paper preset at 16x112x112.
MODELS: dict[str, dict[str, Any]] = {
    "tiny": dict(preset="tiny", batch=16, n_data=360, warmup=2, repeat=5),
    "paper": dict(preset="paper", batch=2, n_data=9537, warmup=1, repeat=3),
}
DEFAULT_VARIANTS: dict[str, tuple[str, ...]] = {
    # the tiny preset back-propagates through the negative: no "nograd" variants
    "tiny": (
        "baseline",
        "ours",
        "concat2",
        "concat3",
        "ours+ncdhw",
        "bf16",
        "bf16+cl",
        "concat3+bf16+cl",
        "ours+t1",
        "ours+ncdhw+t1",
        "baseline+t1",
    ),
    "paper": (
        "baseline",
        "ours",
        "nograd",
        "concat2+nograd",
        "ours+ncdhw",
        "bf16",
        "bf16+cl",
        "nograd+bf16+cl",
        "ours+t1",
    ),
}
TOKENS = (
    "baseline",
    "ours",
    "nograd",
    "concat2",
    "concat3",
    "cl",
    "ncdhw",
    "bf16",
    "t1",
    "t2",
    "compile",
)


# --------------------------------------------------------------------------- FLOPs


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Forward FLOPs of ONE clip (conv/linear: 2 x multiply-adds), counted on the meta device.

    ``input_shape`` is ``(C, T, H, W)``. The model is copied to the meta device, so this is
    instant at any size.
    """
    import copy

    meta = copy.deepcopy(model).to("meta").eval()
    total = 0

    def conv_hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv3d):
            kt, kh, kw = module.kernel_size
            per_output = module.in_channels // module.groups * kt * kh * kw
            total += 2 * output[0].numel() * per_output
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * module.out_features

    handles = [
        m.register_forward_hook(conv_hook)
        for m in meta.modules()
        if isinstance(m, (nn.Conv3d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            meta(torch.empty(1, *input_shape, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return total


# --------------------------------------------------------------------------- steps


def _malloc_trim() -> None:
    """Give freed heap memory back to the OS (glibc), so peak RSS deltas mean something."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def baseline_step(
    state: PretrainState, batch: torch.Tensor, index: torch.Tensor, generator: torch.Generator
) -> dict[str, float]:
    """The original ``train_ssl.py`` step, written the straightforward way.

    Per-sample, per-frame Python loop for the "repeat" negative (the frames drawn as
    :func:`~iic_helpers.negatives.intra_negative` draws them, so that both give the same
    clips), three fp32 forward passes, the negative's graph kept until the step ends.
    """
    inputs = batch
    bsz, _, num_frames = inputs.shape[:3]
    inputs2 = residual(inputs)
    frames = torch.randint(num_frames, (bsz,), generator=generator).tolist()
    negatives = torch.zeros_like(inputs)
    for i in range(bsz):
        for j in range(num_frames):
            negatives[i, :, j, :, :] = inputs[i, :, frames[i], :, :]
    feat_l = state.encode(inputs)
    feat_ab = state.encode(inputs2)
    feat_neg = state.encode(negatives)
    out_l, out_ab = state.contrast(feat_l, feat_ab, index, feat_neg)
    loss = state.criterion(out_l).sum() + state.criterion(out_ab).sum()
    state.optimizer.zero_grad()
    loss.backward()
    state.optimizer.step()
    return {"loss": loss.item()}


def custom_step(
    state: PretrainState,
    batch: torch.Tensor,
    index: torch.Tensor,
    generator: torch.Generator,
    *,
    concat: int = 1,
    nograd: bool = False,
    amp: bool = False,
) -> dict[str, float]:
    """``pretrain_step`` with the benchmark's options (view 2 = residual frames).

    ``concat=1, nograd=False, amp=False`` computes exactly what ``pretrain_step`` does;
    ``nograd=True`` too (it needs ``negative_gradient=False``).
    """
    cfg = state.cfg
    gradient = state.contrast.negative_gradient
    if nograd and gradient:
        raise ValueError("nograd needs negative_gradient=False (the negative is in the loss)")
    view1, view2 = batch, residual(batch)
    encode = state.encode
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        if concat == 3:
            negatives = intra_negative(view1, cfg.intra_negative, generator)
            feat_v1, feat_v2, feat_neg = encode(torch.cat([view1, view2, negatives])).chunk(3)
        else:
            if concat == 2:
                feat_v1, feat_v2 = encode(torch.cat([view1, view2])).chunk(2)
            else:
                feat_v1 = encode(view1)
                feat_v2 = encode(view2)
            negatives = intra_negative(view1, cfg.intra_negative, generator)
            with torch.set_grad_enabled(not nograd):
                feat_neg = encode(negatives)
        if not gradient:
            feat_neg = feat_neg.detach()
    feat_v1, feat_v2, feat_neg = feat_v1.float(), feat_v2.float(), feat_neg.float()
    out_v1, out_v2 = state.contrast(feat_v1, feat_v2, index, feat_neg)
    loss = state.criterion(out_v1).sum() + state.criterion(out_v2).sum()
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    return {"loss": loss.item()}


def parse_variant(name: str) -> dict[str, Any]:
    """``"concat2+bf16+t1"`` -> options; raises ValueError on unknown tokens."""
    tokens = name.split("+")
    unknown = [t for t in tokens if t not in TOKENS]
    if unknown:
        raise ValueError(f"unknown variant token(s) {unknown} in {name!r}; tokens: {TOKENS}")
    opts: dict[str, Any] = {
        "baseline": "baseline" in tokens,
        "channels_last": "cl" in tokens,
        "ncdhw": "ncdhw" in tokens,
        "threads": 1 if "t1" in tokens else (2 if "t2" in tokens else None),
        "concat": 3 if "concat3" in tokens else (2 if "concat2" in tokens else 1),
        "nograd": "nograd" in tokens,
        "amp": "bf16" in tokens,
        "compile": "compile" in tokens,
    }
    opts["package"] = not opts["baseline"] and not (
        opts["concat"] > 1 or opts["nograd"] or opts["amp"]
    )
    return opts


def make_step(opts: dict[str, Any]) -> Callable[..., dict[str, float]]:
    if opts["baseline"]:
        return baseline_step
    if opts["package"]:
        return pretrain_step

    def step(state, batch, index, generator):
        return custom_step(
            state,
            batch,
            index,
            generator,
            concat=opts["concat"],
            nograd=opts["nograd"],
            amp=opts["amp"],
        )

    return step


def precision_check(model: str, batch: int, **overrides: Any) -> dict[str, float]:
    """Relative L2 error of one training-mode forward pass against fp32 NCDHW.

    Returns ``{"cl": ..., "bf16": ..., "bf16+cl": ...}``: ``||f - f_fp32|| / ||f_fp32||``
    of the features of the same random batch (fresh seeded model, train-mode BatchNorm).
    """
    import copy

    state = build_state(model, 10, **overrides)
    cfg = state.cfg
    shape = (batch, 3, cfg.clip_len, cfg.crop, cfg.crop)
    clips = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    net = nn.Sequential(state.model, state.head).train()
    out = {}
    with torch.no_grad():
        reference = copy.deepcopy(net)(clips)
        for name, cl, amp in (("cl", True, False), ("bf16", False, True), ("bf16+cl", True, True)):
            candidate = copy.deepcopy(net)
            if cl:
                candidate.to(memory_format=torch.channels_last_3d)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                feats = candidate(clips).float()
            out[name] = float((feats - reference).norm() / reference.norm())
    return out


def build_state(model: str, n_data: int, **overrides: Any) -> PretrainState:
    """A fresh, seeded pretraining state for the ``tiny`` or ``paper`` settings on the CPU."""
    spec = MODELS[model]
    cfg = make_config(spec["preset"], device="cpu", **overrides)
    torch.manual_seed(0)
    return PretrainState(cfg, n_data, torch.device("cpu"))


def run_variant(
    model: str,
    variant: str,
    *,
    batch: int,
    n_data: int,
    warmup: int,
    repeat: int,
    default_threads: int,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Time one variant: ms per sample (median over ``repeat`` steps) and peak extra RSS.

    The first warm-up step also measures the peak RSS above the level before it (MiB).
    """
    opts = parse_variant(variant)
    threads = opts["threads"] or default_threads
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        state = build_state(model, n_data, **(overrides or {}))
        cfg = state.cfg
        # the package's pretrain() puts the model in channels_last_3d when the config says so
        package_cl = opts["package"] and cfg.channels_last and not opts["ncdhw"]
        if opts["channels_last"] or package_cl:
            state.model.to(memory_format=torch.channels_last_3d)
        if opts["compile"]:  # the backbone through torch.compile (inductor); not in the package
            state.engine = torch.compile(state.engine)
        shape = (batch, 3, cfg.clip_len, cfg.crop, cfg.crop)
        clips = torch.rand(shape, generator=torch.Generator().manual_seed(1))
        index = torch.arange(batch) % n_data
        generator = torch.Generator().manual_seed(2)
        step = make_step(opts)
        state.model.train()
        state.head.train()
        _malloc_trim()
        reset_peak_rss()
        rss0 = rss_mib()
        first_start = time.perf_counter()
        first = step(state, clips, index, generator)
        first_step_s = time.perf_counter() - first_start  # includes compilation with "compile"
        peak = peak_rss_mib()
        peak_extra = None if rss0 is None or peak is None else peak - rss0
        for _ in range(warmup - 1):
            step(state, clips, index, generator)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            step(state, clips, index, generator)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous_threads)
    median = statistics.median(times)
    return {
        "model": model,
        "variant": variant,
        "batch": batch,
        "threads": threads,
        "step_s": median,
        "ms_per_sample": 1000 * median / batch,
        "peak_extra_mib": peak_extra,
        "first_step_s": first_step_s,
        "first_loss": first["loss"],
        "times_s": times,
    }


def run(
    models: Sequence[str] = ("tiny", "paper"),
    variants: dict[str, Sequence[str]] | None = None,
    *,
    batch: dict[str, int] | None = None,
    warmup: dict[str, int] | None = None,
    repeat: dict[str, int] | None = None,
    threads: int | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the benchmark; returns ``{"rows": [...], "flops": {...}, "settings": {...}}``.

    Every row has ``model``, ``variant``, ``ms_per_sample``, ``speedup`` (baseline time /
    variant time, same run; None when the baseline was not run), ``gflops``
    (achieved, reference FLOP count) and ``peak_extra_mib``.
    """
    variants = variants or DEFAULT_VARIANTS
    threads = threads or torch.get_num_threads()
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    flops: dict[str, dict[str, float]] = {}
    settings: dict[str, Any] = {}
    for model in models:
        spec = MODELS[model]
        b = (batch or {}).get(model, spec["batch"])
        w = (warmup or {}).get(model, spec["warmup"])
        r = (repeat or {}).get(model, spec["repeat"])
        model_overrides = (overrides or {}).get(model, {})
        cfg = make_config(spec["preset"], **model_overrides)
        net = build_backbone(cfg.backbone, width=cfg.width)
        forward = count_flops(net, (3, cfg.clip_len, cfg.crop, cfg.crop))
        backward_passes = 3 if cfg.negative_gradient else 2  # each ~2x a forward pass
        per_sample_step = (3 + 2 * backward_passes) * forward
        flops[model] = {
            "forward_gflop_per_clip": forward / 1e9,
            "step_gflop_per_sample": per_sample_step / 1e9,
        }
        settings[model] = {
            "preset": spec["preset"],
            "backbone": cfg.backbone,
            "width": cfg.width,
            "input": f"{cfg.clip_len}x{cfg.crop}x{cfg.crop}",
            "batch": b,
            "k": cfg.k,
            "n_data": spec["n_data"],
            "warmup": w,
            "repeat": r,
            "normalize_features": cfg.normalize_features,
            "negative_gradient": cfg.negative_gradient,
            "flop_multiple": 3 + 2 * backward_passes,
            "center_features": cfg.center_features,
        }
        settings[model]["relative_error_vs_fp32"] = precision_check(
            model, min(b, 4), **model_overrides
        )
        base_time = None
        for variant in variants[model]:
            if model == "paper" and "bf16" in variant.split("+") and not has_bf16_kernels():
                # no bf16 instructions: oneDNN falls back to reference kernels (tiny: ~600
                # ms/sample, 20x fp32); at the paper size one step would take minutes
                skipped.append({"model": model, "variant": variant, "reason": BF16_SKIP})
                if verbose:
                    print(f"  {model:5s} {variant:14s} skipped: {BF16_SKIP}", flush=True)
                continue
            row = run_variant(
                model,
                variant,
                batch=b,
                n_data=spec["n_data"],
                warmup=w,
                repeat=r,
                default_threads=threads,
                overrides=model_overrides,
            )
            if variant == "baseline":
                base_time = row["ms_per_sample"]
            row["gflops"] = per_sample_step / (row["ms_per_sample"] / 1000) / 1e9
            rows.append(row)
            if verbose:
                print(
                    f"  {model:5s} {variant:14s} {row['ms_per_sample']:9.1f} ms/sample "
                    f"{row['gflops']:6.1f} GFLOP/s  peak +{row['peak_extra_mib'] or 0:.0f} MiB",
                    flush=True,
                )
        for row in rows:
            if row["model"] == model:
                row["speedup"] = None if base_time is None else base_time / row["ms_per_sample"]
    return {"rows": rows, "skipped": skipped, "flops": flops, "settings": settings}


BF16_SKIP = "no bf16 instructions on this ISA (reference kernels)"


def has_bf16_kernels() -> bool:
    """Whether oneDNN can use bf16 instructions here: an AVX-512 run on a CPU with
    ``avx512_bf16`` (the AVX2 child and AVX2-only CPUs cannot)."""
    return torch.backends.cpu.get_cpu_capability() == "AVX512" and "avx512_bf16" in cpu_flags()


TABLE_COLUMNS = (
    "model",
    "variant",
    "batch",
    "threads",
    "ms_per_sample",
    "speedup",
    "gflops",
    "peak_extra_mib",
    "first_loss",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="tiny,paper", help="comma-separated: tiny,paper")
    parser.add_argument("--variants", default=None, help="comma-separated, for every model")
    parser.add_argument("--paper-batch", type=int, default=MODELS["paper"]["batch"])
    parser.add_argument("--repeat", type=int, default=None, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=None, help="default intra-op threads")
    parser.add_argument("--out", default=None, help="folder for the JSON (benchmarks/results)")
    add_isa_argument(parser)
    args = parser.parse_args(argv)
    return run_isas(args.isa, lambda: run_once(args), __file__, argv)


def run_once(args: argparse.Namespace) -> int:
    """One run of the benchmark in this process (whatever instruction set it is limited to)."""
    models = [m for m in args.models.split(",") if m]
    variants = None
    if args.variants:
        chosen = tuple(v for v in args.variants.split(",") if v)
        for v in chosen:
            parse_variant(v)
        variants = {m: chosen for m in models}
    repeat = None if args.repeat is None else {m: args.repeat for m in models}
    info = machine_info()
    print(
        f"bench_train_step on {info['cpu']} ({info['logical_cpus']} CPUs), torch {info['torch']}, "
        f"isa {info['isa']} ({info['torch_cpu_capability']})"
    )
    if info["other_busy_processes"]:
        print("  note: other busy processes:", *info["other_busy_processes"], sep="\n    ")
    start = time.perf_counter()
    result = run(
        models,
        variants,
        batch={"paper": args.paper_batch},
        repeat=repeat,
        threads=args.threads,
    )
    elapsed = time.perf_counter() - start
    info["other_busy_processes_end"] = warn_if_busy()
    print()
    for model, f in result["flops"].items():
        s = result["settings"][model]
        print(
            f"{model}: {s['backbone']} width {s['width']}, {s['input']}, batch {s['batch']}, "
            f"k={s['k']}; {f['forward_gflop_per_clip']:.3f} GFLOP forward per clip, "
            f"{f['step_gflop_per_sample']:.2f} GFLOP per sample and step "
            f"({s['flop_multiple']}x; negative_gradient={s['negative_gradient']})"
        )
        errors = ", ".join(f"{k} {v:.1e}" for k, v in s["relative_error_vs_fp32"].items())
        print(f"  feature relative error vs fp32 NCDHW (one forward): {errors}")
    print(format_table(result["rows"], TABLE_COLUMNS))
    print(f"(speedup = baseline ms / variant ms, same run; {elapsed:.0f} s in all)")
    payload = {
        "benchmark": "train_step",
        "command": command_line(),
        "machine": info,
        "elapsed_s": elapsed,
        "reference_r3d_forward_flops": REFERENCE_R3D_FLOPS,
        **result,
    }
    path = write_json(result_name("train_step"), payload, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
