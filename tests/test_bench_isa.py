"""The benchmarks' instruction-set runs (``--isa native|avx2|both`` in ``benchmarks/_common.py``):
the AVX2 child's environment, that it really limits torch/oneDNN/numpy/OpenBLAS to AVX2, the
JSON names and labels, and the order of the runs. No benchmark is run here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import _common  # noqa: E402  (benchmarks/ is not a package)

REQUIRED = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}


def _cpu_has(flag: str) -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(
        line.startswith("flags") and flag in line.split(":", 1)[1].split()
        for line in text.splitlines()
    )


def test_avx2_env_sets_the_limits_and_keeps_the_rest() -> None:
    env = _common.avx2_env({"PATH": "/bin", "ATEN_CPU_CAPABILITY": "default"})
    for var, value in REQUIRED.items():
        assert env[var] == value
    assert env["PATH"] == "/bin"
    assert env[_common.AVX2_CHILD_MARKER] == "1"
    disabled = env["NPY_DISABLE_CPU_FEATURES"].split()
    assert all(t == "X86_V4" or t.startswith("AVX512") for t in disabled)
    assert _common.AVX2_CHILD_MARKER not in os.environ  # the parent's environment is untouched
    assert set(_common.ISA_ENV_VARS) >= set(REQUIRED) | {"NPY_DISABLE_CPU_FEATURES"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--models", "tiny"], ["--models", "tiny", "--isa", "avx2"]),
        (["--isa", "both", "--repeat", "1"], ["--repeat", "1", "--isa", "avx2"]),
        (["--isa=native", "--out", "/tmp/x"], ["--out", "/tmp/x", "--isa", "avx2"]),
    ],
)
def test_child_argv_replaces_the_isa_option(argv: list[str], expected: list[str]) -> None:
    assert _common.child_argv(argv) == expected


def test_json_names_for_the_two_isas(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _common.result_name("train_step", avx2=False) == "train_step"
    assert _common.result_name("train_step", avx2=True) == "train_step_avx2"
    monkeypatch.delenv(_common.AVX2_CHILD_MARKER, raising=False)
    assert _common.result_name("retrieval") == "retrieval"
    monkeypatch.setenv(_common.AVX2_CHILD_MARKER, "1")
    assert _common.result_name("retrieval") == "retrieval_avx2"


def test_isa_labels() -> None:
    assert _common.isa_label("AVX512", avx512_cpu=True) == "native"
    assert _common.isa_label("AVX2", avx512_cpu=True) == "avx2-emulated"
    assert _common.isa_label("AVX2", avx512_cpu=False) == "avx2-native"
    assert _common.isa_label("DEFAULT", avx512_cpu=False) == "native"


def test_machine_info_records_the_isa() -> None:
    info = _common.machine_info()
    for key in ("isa", "torch_cpu_capability", "cpu_flags", "cpu", "isa_env"):
        assert key in info
    assert set(info["isa_env"]) == set(_common.ISA_ENV_VARS)
    assert info["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_check_avx2_limits_fails_when_torch_is_not_limited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    with pytest.raises(RuntimeError, match="_common.py.*not 'AVX2'"):
        _common.check_avx2_limits()


CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import torch
import _common
_common.check_avx2_limits()
x = torch.rand(2, 16, 8, 16, 16)
with torch.no_grad():
    torch.nn.Conv3d(16, 16, 3)(x)
print("CAPABILITY", torch.backends.cpu.get_cpu_capability())
print("INFO", json.dumps(_common.isa_info()))
"""


@pytest.mark.skipif(not _cpu_has("avx2"), reason="needs an x86-64 CPU with AVX2")
def test_child_environment_limits_every_library_to_avx2() -> None:
    """A tiny python child with ``avx2_env()``: torch, oneDNN, numpy and OpenBLAS use AVX2."""
    env = _common.avx2_env()
    env["ONEDNN_VERBOSE"] = "1"  # oneDNN prints the instruction set it dispatches to
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(BENCH)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert "CAPABILITY AVX2" in lines
    info = json.loads(next(line for line in lines if line.startswith("INFO "))[5:])
    assert info["torch_cpu_capability"] == "AVX2"
    assert info["isa"] == ("avx2-emulated" if _common.cpu_has_avx512() else "avx2-native")
    assert {k: info["isa_env"][k] for k in REQUIRED} == REQUIRED
    assert info["numpy_avx512_targets_enabled"] == []
    isa_lines = [line for line in lines if line.startswith("onednn_verbose") and ",isa:" in line]
    assert isa_lines and all("AVX2" in line and "512" not in line for line in isa_lines)
    convs = [line for line in lines if ",convolution," in line]
    assert all("avx512" not in line for line in convs), convs


class _Recorder:
    """Stands in for ``subprocess.run`` and for the benchmark body; records the calls."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def body(self) -> int:
        self.calls.append("native" if not _common.is_avx2_child() else "avx2-in-process")
        return 0

    def run(self, cmd: list[str], env: dict[str, str], check: bool) -> subprocess.CompletedProcess:
        self.calls.append(("child", cmd, env))
        return subprocess.CompletedProcess(cmd, 0)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    rec = _Recorder()
    monkeypatch.setattr(_common.subprocess, "run", rec.run)
    for var in (*_common.ISA_ENV_VARS, _common.AVX2_CHILD_MARKER):
        monkeypatch.delenv(var, raising=False)
    return rec


def test_both_runs_native_then_an_avx2_child(
    recorder: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert _common.run_isas("both", recorder.body, "benchmarks/b.py", ["--isa", "both"]) == 0
    assert recorder.calls[0] == "native"
    kind, cmd, env = recorder.calls[1]
    assert kind == "child" and len(recorder.calls) == 2
    assert cmd == [sys.executable, "benchmarks/b.py", "--isa", "avx2"]
    assert {k: env[k] for k in REQUIRED} == REQUIRED


def test_avx2_alone_runs_only_the_child(recorder: _Recorder) -> None:
    assert _common.run_isas("avx2", recorder.body, "b.py", ["--isa", "avx2"]) == 0
    assert [c[0] for c in recorder.calls] == ["child"]


def test_both_skips_the_child_where_native_already_is_avx2(
    recorder: _Recorder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(_common, "cpu_has_avx512", lambda: False)
    assert _common.run_isas("both", recorder.body, "b.py", []) == 0
    assert recorder.calls == ["native"]
    out = capsys.readouterr().out
    assert "no AVX-512" in out and "avx2-native" in out


def test_native_refuses_inherited_limits(
    recorder: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    with pytest.raises(RuntimeError, match="Unset them"):
        _common.run_isas("native", recorder.body, "b.py", [])
    assert recorder.calls == []


def test_in_the_child_the_body_runs_after_the_check(
    recorder: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_common.AVX2_CHILD_MARKER, "1")
    monkeypatch.setattr(_common, "check_avx2_limits", lambda: None)
    assert _common.run_isas("avx2", recorder.body, "b.py", []) == 0
    assert recorder.calls == ["avx2-in-process"]
    with pytest.raises(RuntimeError, match="--isa is 'both'"):
        _common.run_isas("both", recorder.body, "b.py", [])


def test_common_does_nothing_as_a_script(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "_common.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "helpers only" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_the_child_does_not_count_its_waiting_parent_as_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = f"  PID %CPU COMMAND\n{os.getppid()} 60.0 python benchmarks/b.py\n"
    monkeypatch.setattr(
        _common.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, table, "")
    )
    monkeypatch.delenv(_common.AVX2_CHILD_MARKER, raising=False)
    assert len(_common.other_busy_processes()) == 1
    monkeypatch.setenv(_common.AVX2_CHILD_MARKER, "1")
    assert _common.other_busy_processes() == []
