"""Former home of checkpoint loading, kept so that old imports work.

Everything here now lives in :mod:`iic_helpers.checkpoint`, the one module for reading,
loading and building a backbone from a checkpoint.
"""

from __future__ import annotations

from ..checkpoint import (
    SAFE_GLOBALS,
    CheckpointMismatchError,
    CorruptCheckpointError,
    LoadReport,
    UnsafeCheckpointError,
    extract_state_dict,
    load_weights,
    read_checkpoint,
)

__all__ = [
    "SAFE_GLOBALS",
    "CheckpointMismatchError",
    "CorruptCheckpointError",
    "LoadReport",
    "UnsafeCheckpointError",
    "extract_state_dict",
    "load_weights",
    "read_checkpoint",
]
