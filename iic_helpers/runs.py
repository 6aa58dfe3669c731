"""Run directories shared by every command: their default names (built only here:
:data:`RUNS_DIR`, :func:`pretrain_run_dir`, :func:`finetune_run_dir`, :func:`eval_run_dir`),
``history.csv`` rows, ``results.json``, a shipped checkpoint adopted as a run
(:func:`adopt_checkpoint`), and the lock that makes one process the only writer of a run
directory.

:func:`run_lock` creates ``<run_dir>/run.lock`` exclusively (``O_CREAT | O_EXCL``) holding the
PID, host and command of its owner, and keeps an ``fcntl`` lock on it while the run lasts. A
second process asking for the same directory gets :class:`RunLockedError` naming the owner; a
lock left behind by a killed process is recognised as stale (its ``fcntl`` lock is gone) and
reported with the command that removes it. Nested use in one process (the ablation's run
calls pretraining, retrieval and fine-tuning on its directory) is allowed. Under ``torchrun``
only rank 0 writes a run directory, so only rank 0 takes the lock.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import inspect
import io
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .checkpoint import atomic_write_text, load_checkpoint
from .config import Config
from .paths import RUNS

__all__ = [
    "ABLATION_RUN_DIR",
    "RUNS_DIR",
    "finetune_run_dir",
    "pretrain_run_dir",
    "LOCK_NAME",
    "RunLockedError",
    "adopt_checkpoint",
    "append_csv_row",
    "eval_run_dir",
    "locks_run_dir",
    "read_csv_rows",
    "read_results",
    "remove_orphan_tmp_files",
    "run_lock",
    "update_results",
    "write_csv_rows",
]

LOCK_NAME = "run.lock"

#: Run directories locked by this process: ``{resolved path: (fd, depth)}``.
_HELD: dict[str, tuple[int, int]] = {}

F = TypeVar("F", bound=Callable[..., Any])


class RunLockedError(RuntimeError):
    """Another process (or a killed one) holds the run directory's lock."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _flock(fd: int) -> bool:
    """Take an exclusive non-blocking ``fcntl`` lock; False when someone else holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (not POSIX): rely on O_EXCL alone
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _describe_holder(path: Path) -> str:
    """Why ``path`` cannot be taken: a live owner, or a stale lock and how to clear it."""
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    pid, host = info.get("pid"), info.get("host", "?")
    owner = f"PID {pid} on {host}" if pid else "another process (lock being written)"
    what = f" ({info['command']}, since {info['started']})" if "command" in info else ""
    stale = False
    if pid and host == socket.gethostname():
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                stale = _flock(fd) or not _pid_alive(int(pid))
            finally:
                os.close(fd)
    if stale:
        return (
            f"{path.parent} has a stale lock: {owner}{what} is no longer running (killed?). "
            f"If no other run uses the directory, clear it with: rm {path}"
        )
    return (
        f"{path.parent} is in use by {owner}{what}: one run directory has one writer; wait "
        f"for it, choose another --run-dir, or if that process is gone: rm {path}"
    )


def remove_orphan_tmp_files(run_dir: Path) -> list[Path]:
    """Delete temporary files (``.<name>.*.tmp``) left by saves that were killed mid-write.

    Only safe while holding the run directory's lock (nobody else is writing).
    """
    removed = []
    for tmp in Path(run_dir).glob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike[str], command: str = "run") -> Iterator[Path]:
    """Hold ``<run_dir>/run.lock`` for the duration of the block (created if needed).

    Raises:
        RunLockedError: another live process holds it, or a stale lock is left (the message
            names the owner and, for a stale lock, the ``rm`` command that clears it).
    """
    run_dir = Path(run_dir)
    if int(os.environ.get("RANK", "0") or 0) != 0:  # torchrun: rank 0 owns the directory
        yield run_dir
        return
    created = [d for d in (run_dir, *run_dir.parents) if not d.exists()]
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    key = str(path.resolve())
    if key in _HELD:  # nested in this process
        fd, depth = _HELD[key]
        _HELD[key] = (fd, depth + 1)
        try:
            yield run_dir
        finally:
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth - 1)
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise RunLockedError(_describe_holder(path)) from None
    try:
        _flock(fd)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.write(fd, (json.dumps(info) + "\n").encode())
        os.fsync(fd)
        _HELD[key] = (fd, 1)
        removed = remove_orphan_tmp_files(run_dir)
        if removed:
            print(
                f"{command}: removed {len(removed)} temporary file(s) left by an interrupted "
                f"save in {run_dir}"
            )
        yield run_dir
    finally:
        _HELD.pop(key, None)
        path.unlink(missing_ok=True)
        os.close(fd)
        for folder in created:  # leave no empty folders behind when nothing was written
            with contextlib.suppress(OSError):
                folder.rmdir()


def locks_run_dir(command: str, default: Callable[..., Path | None]) -> Callable[[F], F]:
    """Decorator: run the function while holding its ``run_dir`` argument's lock.

    ``default(**arguments)`` gives the directory when ``run_dir`` is None (return None for
    "writes nothing", e.g. retrieval without a run directory).
    """

    def wrap(func: F) -> F:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def locked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            run_dir = bound.arguments.get("run_dir")
            if run_dir is None:
                run_dir = default(**bound.arguments)
            if run_dir is None:
                return func(*args, **kwargs)
            with run_lock(run_dir, command):
                return func(*args, **kwargs)

        return locked  # type: ignore[return-value]

    return wrap


#: Folder of every default run directory: the repository's ``runs/`` whatever the working
#: directory (a ``--run-dir`` given by the user stays relative to where it was typed). The
#: one place default run-directory names are built is below.
RUNS_DIR = RUNS


def pretrain_run_dir(cfg: Config, kind: str = "pretrain") -> Path:
    """Where pretraining without ``--run-dir`` writes:
    ``runs/<preset>-<kind>-<intra>-<view2>-s<seed>``."""
    return RUNS_DIR / f"{cfg.preset}-{kind}-{cfg.intra_negative}-{cfg.view2}-s{cfg.seed}"


def finetune_run_dir(cfg: Config) -> Path:
    """Where fine-tuning without ``--run-dir`` writes: ``runs/<preset>-finetune``."""
    return RUNS_DIR / f"{cfg.preset}-finetune"


#: Where the ablation's runs go without ``--run-dir``.
ABLATION_RUN_DIR = RUNS_DIR / "ablation"


def eval_run_dir(
    checkpoint: str | os.PathLike[str] | None, kind: str, preset: str, seed: int
) -> Path:
    """Where an evaluation without ``--run-dir`` writes.

    A run's own checkpoint (``<run>/checkpoint.pt``) reports into ``<run>``; any other file
    (``checkpoints/tiny-cmc.pt``, an original ``.pth``) into ``runs/<kind>-<stem>-<hash>``,
    the hash being of the checkpoint's absolute path, so that two checkpoints never share a
    results file and the git-tracked ``checkpoints/`` folder is never written to.
    """
    if checkpoint is None:
        return RUNS_DIR / f"{preset}-{kind}-random-s{seed}"
    path = Path(checkpoint)
    if path.name == "checkpoint.pt":
        return path.parent
    tag = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    return RUNS_DIR / f"{kind}-{path.stem}-{tag}"


def append_csv_row(path: Path, fields: Sequence[str], row: Mapping[str, Any]) -> None:
    """Append one row (writing the header first when the file is new)."""
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        if new:
            writer.writeheader()
        writer.writerow({key: row[key] for key in fields})


def write_csv_rows(path: Path, fields: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Write a whole CSV file (header and ``rows``) atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: row[key] for key in fields})
    atomic_write_text(path, buffer.getvalue())


def read_csv_rows(path: Path) -> list[dict[str, float]]:
    """Rows of a history file as dicts of floats."""
    if not path.exists():
        raise FileNotFoundError(f"no history at {path}: run the training command first")
    with path.open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def update_results(run_dir: str | Path, results: Mapping[str, Any]) -> Path:
    """Merge ``results`` into ``<run_dir>/results.json`` (other commands' keys are kept);
    the file is replaced atomically."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "results.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(results)
    atomic_write_text(path, json.dumps(merged, indent=2) + "\n")
    return path


def read_results(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"no results at {path}: run retrieve / finetune first")
    return json.loads(path.read_text())


def adopt_checkpoint(source: str | Path, run_dir: str | Path) -> Path:
    """Make ``run_dir`` a run built from a shipped checkpoint file (``checkpoints/*.pt``).

    Copies the checkpoint to ``<run_dir>/checkpoint.pt``, its ``<stem>.history.csv`` (when
    present) to ``history.csv``, and writes ``config.json`` from the checkpoint's config, so
    later notebooks read it exactly like a run trained here.
    """
    source, run_dir = Path(source), Path(run_dir)
    state = load_checkpoint(source)
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, run_dir / "checkpoint.pt")
    history = source.with_suffix(".history.csv")
    if history.exists():
        shutil.copyfile(history, run_dir / "history.csv")
    if isinstance(state.get("config"), dict):
        (run_dir / "config.json").write_text(json.dumps(state["config"], indent=2) + "\n")
    return run_dir
