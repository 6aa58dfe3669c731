"""Emulating an AVX2-only CPU on an AVX-512 one, for timing (benchmarks, notebook runs).

Each library with its own CPU dispatch is limited by an environment variable that it reads
when it is loaded, so the limits must be in the environment of a *new* process (a child or
a Jupyter kernel), never set after ``import torch``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path

__all__ = ["AVX2_ENV", "avx2_env", "cpu_model", "isa_label", "numpy_avx512_targets"]

#: Limits of an AVX2 run, one per library with its own CPU dispatch: oneDNN (convolutions),
#: ATen's vectorised kernels, MKL (torch's BLAS), OpenBLAS (numpy's BLAS: ``Haswell`` is its
#: AVX2 kernel set), numba (UMAP). numpy's own SIMD dispatch is limited by
#: ``NPY_DISABLE_CPU_FEATURES`` (see :func:`numpy_avx512_targets`).
AVX2_ENV: dict[str, str] = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "NUMBA_CPU_NAME": "haswell",
}


def numpy_avx512_targets() -> list[str]:
    """numpy's dispatch targets that use AVX-512 (``X86_V4``, ``AVX512_*``): disabled for AVX2.

    >>> all(t == "X86_V4" or t.startswith("AVX512") for t in numpy_avx512_targets())
    True
    """
    from numpy._core._multiarray_umath import __cpu_dispatch__

    return [t for t in __cpu_dispatch__ if t == "X86_V4" or t.startswith("AVX512")]


def avx2_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) plus :data:`AVX2_ENV` and numpy's limit.

    >>> avx2_env({})["ONEDNN_MAX_CPU_ISA"]
    'AVX2'
    """
    env = dict(os.environ if base is None else base)
    env.update(AVX2_ENV)
    env["NPY_DISABLE_CPU_FEATURES"] = " ".join(numpy_avx512_targets())
    return env


def isa_label(capability: str, env: Mapping[str, str] | None = None) -> str:
    """``"AVX512"``, ``"AVX2"`` or ``"AVX2 (emulated)"`` (torch's capability, limited by ``env``).

    >>> isa_label("AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"})
    'AVX2 (emulated)'
    >>> isa_label("AVX512", {})
    'AVX512'
    """
    env = os.environ if env is None else env
    return (
        f"{capability} (emulated)"
        if capability == "AVX2" and env.get("ONEDNN_MAX_CPU_ISA")
        else capability
    )


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (platform's guess, or ``"unknown"``, elsewhere).

    >>> isinstance(cpu_model(), str) and cpu_model() != ""
    True
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
