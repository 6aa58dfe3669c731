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
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["MAX_VIEWS", "parallel_backward", "worker_pool"]

#: the most graphs a step has (RGB, view 2, intra-negative): one worker each
MAX_VIEWS = 3


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

    Created on first use; ``set_num_threads(1)`` in a worker also lowers torch's
    process-wide default for threads started later, so the caller's count is written back.
    """
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
