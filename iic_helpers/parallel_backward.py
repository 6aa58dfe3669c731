"""The backward pass of a pretraining step as one job per encoded view, run side by side.

A step encodes two or three clips (RGB, view 2, the intra-negative) with one shared
backbone, in separate forward passes, so the backward pass holds two or three independent
graphs that meet only in the loss and in the parameters. ``loss.backward()`` walks them one
after the other, each operator using the intra-op threads; on small models (the ``tiny``
preset's 8-channel convolutions, BatchNorm over 8 channels) many operators gain little from
a second intra-op thread, most of all with AVX2 kernels (``benchmarks/RESULTS.md``, "Two
threads against one").

:func:`parallel_backward` instead takes the loss's gradient with respect to each view's
features (the small head of the graph), then runs each view's graph down to the parameters
on its own worker thread with **one** intra-op thread, and sums the views' parameter
gradients **in a fixed order**: the order in which ``loss.backward()`` accumulates them (the
last encoded view first), so with one thread everywhere the gradients are bitwise those of
``loss.backward()`` (a test checks this), and with more they are deterministic.

The workers allocate the backward pass's buffers in their own glibc malloc arenas, which
return freed memory to the system after every step, so the next step faults every page in
again (measured: 5.6x the page faults of ``loss.backward()`` and a slower epoch than it).
So the first use calls :func:`keep_freed_memory`: glibc keeps up to 256 MiB of freed
memory for reuse and serves blocks up to 32 MiB from its arenas, for the whole process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["MAX_VIEWS", "keep_freed_memory", "parallel_backward", "worker_pool"]

#: the most graphs a step has (RGB, view 2, intra-negative): one worker each
MAX_VIEWS = 3
#: glibc ``mallopt`` parameters (malloc.h) and the values :func:`keep_freed_memory` sets
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
TRIM_THRESHOLD_BYTES = 256 * 2**20
MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's largest allowed value on 64-bit systems


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse (whole process; once). True if set.

    ``M_TRIM_THRESHOLD`` = 256 MiB (free memory is returned to the system only above
    that) and ``M_MMAP_THRESHOLD`` = 32 MiB (smaller blocks come from the arenas, not from a
    fresh ``mmap`` each time). Without glibc (macOS, Windows, musl) nothing is changed.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
    except (OSError, TypeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc only: other mallopts differ
        return False
    mallopt = libc.mallopt
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def _start_one_thread_worker(barrier: threading.Barrier) -> None:
    """Give this worker one intra-op thread for good, then wait until every worker has.

    torch sets a thread's count at its first parallel call from the process-wide value, so
    that call is made first (``get_num_threads``), then the count is lowered to 1.
    """
    torch.get_num_threads()
    torch.set_num_threads(1)
    barrier.wait()


@functools.cache
def worker_pool() -> ThreadPoolExecutor:
    """The process's :data:`MAX_VIEWS` backward workers, each with one intra-op thread.

    Created on first use, after :func:`keep_freed_memory`; ``set_num_threads(1)`` in a
    worker also lowers torch's process-wide default for threads started later, so the
    caller's count is written back.
    """
    keep_freed_memory()
    caller_threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(MAX_VIEWS, thread_name_prefix="iic-backward")
    barrier = threading.Barrier(MAX_VIEWS)
    started = [pool.submit(_start_one_thread_worker, barrier) for _ in range(MAX_VIEWS)]
    for future in started:
        future.result()
    torch.set_num_threads(caller_threads)
    return pool


def _grads_of_view(
    features: torch.Tensor, grad: torch.Tensor, params: Sequence[torch.Tensor]
) -> tuple[torch.Tensor | None, ...]:
    return torch.autograd.grad(features, params, grad, allow_unused=True)


def parallel_backward(
    loss: torch.Tensor,
    features: Sequence[torch.Tensor],
    params: Sequence[torch.Tensor],
) -> None:
    """Set ``p.grad`` for every ``p`` in ``params`` to d``loss``/d``p``, one worker per view.

    ``features``: each encoded view's output ``(B, D)``, in the order they were encoded;
    ``loss`` must reach ``params`` only through them (the memory bank holds no parameters).
    Each view's gradient is computed by :func:`worker_pool`'s one-thread workers; they are
    summed last view first, as ``loss.backward()`` does. Existing ``.grad`` is replaced.
    """
    if not 1 <= len(features) <= MAX_VIEWS:
        raise ValueError(f"parallel_backward takes 1 to {MAX_VIEWS} views, got {len(features)}")
    feature_grads = torch.autograd.grad(loss, features)
    pool = worker_pool()
    jobs = [
        pool.submit(_grads_of_view, feat, grad, params)
        for feat, grad in zip(features, feature_grads, strict=True)
    ]
    per_view = [job.result() for job in jobs]
    for i, param in enumerate(params):
        total = None
        for grads in reversed(per_view):  # the engine's order: the last encoded view first
            grad = grads[i]
            if grad is not None:
                total = grad if total is None else total + grad
        param.grad = total
