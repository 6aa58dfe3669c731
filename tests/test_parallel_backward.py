"""The step's backward pass as one one-thread worker per view (iic_helpers.parallel_backward)."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from typing import Any

import pytest
import torch

import iic_helpers.train as train
from iic_helpers.config import make_config
from iic_helpers.parallel_backward import (
    MAX_VIEWS,
    keep_freed_memory,
    parallel_backward,
    worker_pool,
)
from tests.conftest import small_config

N_DATA = 16
BATCH = 4


@pytest.fixture
def threads() -> Iterator[None]:
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def _state(parallel: bool, **overrides: Any) -> train.PretrainState:
    cfg = make_config("tiny", **small_config(k=8, cpu_parallel_backward=parallel, **overrides))
    torch.manual_seed(0)
    state = train.PretrainState(cfg, N_DATA, torch.device("cpu"))
    state.model.to(memory_format=torch.channels_last_3d)
    return state


def _run(state: train.PretrainState, steps: int) -> list[float]:
    cfg = state.cfg
    clips = torch.rand(
        (BATCH, 3, cfg.clip_len, cfg.crop, cfg.crop), generator=torch.Generator().manual_seed(1)
    )
    generator = torch.Generator().manual_seed(2)
    losses = []
    for step in range(steps):
        torch.manual_seed(100 + step)  # the memory bank's draws
        losses.append(train.pretrain_step(state, clips, torch.arange(BATCH), generator)["loss"])
    return losses


def _same_weights(a: train.PretrainState, b: train.PretrainState) -> bool:
    pairs = zip(a.model.parameters(), b.model.parameters(), strict=True)
    return all(torch.equal(p, q) for p, q in pairs)


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # tiny: RGB, residual and a back-propagated repeat negative (three graphs)
        {"negative_gradient": False},  # the original: two graphs, the negative detached
        {"intra_negative": "none"},  # CMC
        {"intra_negative": "shuffle", "backbone": "c3d"},
        {"backbone": "r21d"},
    ],
)
def test_one_thread_gives_bitwise_the_gradients_of_loss_backward(
    overrides: dict[str, Any], threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one intra-op thread everywhere the summed per-view gradients are exactly those of
    ``loss.backward()``: the views are added in the autograd engine's order."""
    torch.set_num_threads(1)
    calls = []
    real = train.parallel_backward
    monkeypatch.setattr(train, "parallel_backward", lambda *a: (calls.append(1), real(*a)))
    monkeypatch.setattr(train, "uses_parallel_backward", lambda cfg, *_: cfg.cpu_parallel_backward)
    plain, parallel = _state(False, **overrides), _state(True, **overrides)
    assert _run(plain, 3) == _run(parallel, 3)
    assert len(calls) == 3
    assert _same_weights(plain, parallel)


def test_summed_in_the_engines_order_not_another(threads: None) -> None:
    """The order matters at float precision: summing view 1 first would round differently."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    w = torch.randn(4096, requires_grad=True)
    feats = [w * torch.randn(4096) * 10.0 ** (3 * i) for i in range(3)]
    loss = sum(f.sum() * (i + 1) for i, f in enumerate(feats)) + feats[0].pow(2).sum()
    feat_grads = torch.autograd.grad(loss, feats, retain_graph=True)
    grads = [
        torch.autograd.grad(f, w, g, retain_graph=True)[0]
        for f, g in zip(feats, feat_grads, strict=True)
    ]
    loss.backward(retain_graph=True)
    expected = w.grad.clone()
    assert not torch.equal((grads[0] + grads[1]) + grads[2], expected)
    w.grad = None
    parallel_backward(loss, feats, [w])
    assert torch.equal(w.grad, expected)


def test_two_threads_are_deterministic_and_close_to_loss_backward(threads: None) -> None:
    torch.set_num_threads(2)
    runs = [_state(True) for _ in range(2)]
    first, second = (_run(state, 3) for state in runs)
    assert first == second and _same_weights(*runs)
    plain, parallel = _state(False), _state(True)
    _run(plain, 1), _run(parallel, 1)
    for p, q in zip(plain.model.parameters(), parallel.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-5)  # another rounding, no more


def test_the_default_step_on_two_threads_uses_it(
    threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = train.parallel_backward
    monkeypatch.setattr(train, "parallel_backward", lambda *a: (calls.append(len(a[1])), real(*a)))
    torch.set_num_threads(2)
    _run(_state(True), 1)
    _run(_state(True, view2="rgb"), 1)  # view 1's graph counted once
    torch.set_num_threads(1)
    _run(_state(True), 1)
    assert calls == [3, 2]


def test_when_it_is_used() -> None:
    cfg, cpu = make_config("tiny"), torch.device("cpu")
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert cfg.cpu_parallel_backward is True
        assert train.uses_parallel_backward(cfg, cpu, None, 3)
        assert not train.uses_parallel_backward(cfg, cpu, None, 1)
        assert not train.uses_parallel_backward(cfg, torch.device("cuda"), None, 3)
        assert not train.uses_parallel_backward(cfg.replace(cpu_bf16=True), cpu, None, 3)
        off = cfg.replace(cpu_parallel_backward=False)
        assert not train.uses_parallel_backward(off, cpu, None, 3)
        torch.set_num_threads(3)
        assert train.uses_parallel_backward(cfg, cpu, None, 3)
        for threads in (1, 4):  # nothing to gain / more threads than the workers would use
            torch.set_num_threads(threads)
            assert not train.uses_parallel_backward(cfg, cpu, None, 3)
    finally:
        torch.set_num_threads(previous)


def test_workers_have_one_thread_and_the_caller_keeps_its_count(threads: None) -> None:
    torch.set_num_threads(2)
    pool = worker_pool()
    jobs = [pool.submit(torch.get_num_threads) for _ in range(2 * MAX_VIEWS)]
    counts = [job.result() for job in jobs]
    assert counts == [1] * (2 * MAX_VIEWS)
    assert torch.get_num_threads() == 2


def test_view_count_is_checked() -> None:
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="1 to 3 views, got 0"):
        parallel_backward(w.sum(), [], [w])
    with pytest.raises(ValueError, match="1 to 3 views, got 4"):
        parallel_backward(w.sum(), [w * 1] * 4, [w])


def test_glibc_keeps_freed_memory_once_the_workers_exist() -> None:
    """On glibc (Linux) the thresholds are set (mallopt accepted both values); elsewhere
    nothing is changed and it says so."""
    worker_pool()
    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")
