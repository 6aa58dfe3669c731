"""Tests for iic_helpers.models: architectures against the original IIC code, and loading.

Fixtures (copies of /work/shared/reference, see its README):
* ``models_reference.json`` = ``models.json``: state-dict layout, parameter counts and the
  per-layer conv shapes of the original R3D, R3D+Linear(101), C3D and R(2+1)D.
* ``models_forward.npz`` = ``models_forward.npz`` without the two ``r3d_cls101`` /
  ``return_conv=True`` arrays (identical to the ``r3d`` ones): the input ``x_uint8`` and
  the original networks' outputs under a deterministic weight fill (:func:`fill_weights`).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from iic_helpers.models import (
    BACKBONES,
    CheckpointMismatchError,
    LoadReport,
    UnsafeCheckpointError,
    build_backbone,
    load_weights,
)

FIXTURES = Path(__file__).parent / "fixtures"
REF = json.loads((FIXTURES / "models_reference.json").read_text())["models"]

# reference name -> (build_backbone name, options)
CONFIGS = {
    "r3d": ("r3d", {}),
    "r3d_cls101": ("r3d", {"num_classes": 101}),
    "c3d": ("c3d", {}),
    "r21d": ("r21d", {}),
}


@pytest.fixture(scope="module")
def forward_ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "models_forward.npz") as z:
        return {k: z[k] for k in z.files}


def reference_output(ref: dict[str, np.ndarray], name: str, return_conv: bool, mode: str):
    if name == "r3d_cls101" and return_conv:  # the classifier is skipped: same as r3d
        name = "r3d"
    return ref[f"{name}__return_conv_{return_conv}__{mode}"]


def fill_weights(model: nn.Module) -> nn.Module:
    """The reference's deterministic fill: each value from its tensor's shape alone.

    Computed in float64, cast to float32 (then to the model's dtype by ``copy_``).
    """

    def f32(t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.float32)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                w = m.weight
                i = torch.arange(w.numel(), dtype=torch.float64)
                fan_in = w[0].numel()
                w.copy_(f32(torch.sin(0.7 * i + 0.3) * 2 / fan_in**0.5).reshape(w.shape))
                if m.bias is not None:
                    j = torch.arange(m.bias.numel(), dtype=torch.float64)
                    m.bias.copy_(f32(0.1 * torch.cos(0.3 * j)))
            elif isinstance(m, nn.BatchNorm3d):
                j = torch.arange(m.num_features, dtype=torch.float64)
                m.weight.copy_(f32(1 + 0.1 * torch.sin(0.5 * j)))
                m.bias.copy_(f32(0.05 * torch.cos(0.5 * j)))
                m.running_mean.copy_(f32(0.02 * torch.sin(0.3 * j)))
                m.running_var.copy_(f32(1 + 0.2 * torch.cos(0.3 * j) ** 2))
                m.num_batches_tracked.zero_()
    return model


def scaled_error(out: torch.Tensor, ref: np.ndarray) -> float:
    return float(np.abs(out.detach().double().numpy() - ref).max() / np.abs(ref).max())


# --------------------------------------------------------------------------- layout


@pytest.mark.parametrize("ref_name", list(CONFIGS))
def test_state_dict_matches_original(ref_name: str) -> None:
    name, opts = CONFIGS[ref_name]
    model = build_backbone(name, **opts)
    ref = REF[ref_name]
    got = {
        k: (list(v.shape), str(v.dtype).removeprefix("torch."))
        for k, v in model.state_dict().items()
    }
    want = {e["key"]: (e["shape"], e["dtype"]) for e in ref["state_dict"]}
    assert sorted(set(got) - set(want)) == [] and sorted(set(want) - set(got)) == []
    assert got == want
    assert list(got) == list(want)  # registration order too (downsampleconv first)
    assert sum(p.numel() for p in model.parameters()) == ref["total_parameters"]
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("ref_name", list(CONFIGS))
def test_conv_layers_match_original(ref_name: str) -> None:
    """Every Conv3d/Linear: execution order, in/out shapes, kernel, stride, padding, bias."""
    name, opts = CONFIGS[ref_name]
    model = build_backbone(name, **opts).eval()
    seen: list[dict] = []

    def hook(mod_name: str):
        def record(mod: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
            row = {"type": type(mod).__name__, "name": mod_name, "bias": mod.bias is not None}
            if isinstance(mod, nn.Conv3d):
                row.update(in_shape=list(inputs[0].shape[1:]), out_shape=list(out.shape[1:]))
                row.update(kernel=list(mod.kernel_size), stride=list(mod.stride))
                row.update(padding=list(mod.padding))
            else:
                row.update(in_features=inputs[0].shape[1], out_features=out.shape[1])
            seen.append(row)

        return record

    for mod_name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv3d, nn.Linear)):
            mod.register_forward_hook(hook(mod_name))
    with torch.no_grad():
        model(torch.zeros(1, 3, 16, 112, 112))
    want = REF[ref_name]["flops_per_clip_3x16x112x112"]["per_layer"]
    assert [row["name"] for row in seen] == [layer["name"] for layer in want]
    for row, layer in zip(seen, want, strict=True):
        assert row == {k: layer[k] for k in row}, row["name"]


def test_r3d18_layout() -> None:
    sd = build_backbone("r3d18", width=8).state_dict()
    for layer in ("conv2", "conv3", "conv4", "conv5"):
        assert f"{layer}.block1.conv1.temporal_spatial_conv.weight" in sd
        assert f"{layer}.blocks.0.conv1.temporal_spatial_conv.weight" in sd
        assert f"{layer}.blocks.0.bn2.running_var" in sd
        assert not any(k.startswith(f"{layer}.blocks.1.") for k in sd)
        assert not any(k.startswith(f"{layer}.blocks.0.downsample") for k in sd)
    assert "conv3.block1.downsampleconv.temporal_spatial_conv.weight" in sd
    assert sd["conv5.blocks.0.conv2.temporal_spatial_conv.weight"].shape == (64, 64, 3, 3, 3)


@pytest.mark.parametrize("name", BACKBONES)
def test_small_shapes_and_float64(name: str) -> None:
    x = torch.rand(1, 3, 16, 32, 32, dtype=torch.float64)
    torch.manual_seed(0)
    feat = build_backbone(name, width=8).double().eval()
    out = feat(x)
    assert out.shape == (1, 64) and out.dtype == torch.float64
    assert torch.isfinite(out).all()
    conv = feat.forward_features(x)
    assert conv.shape == (1, 64, 2, 2, 2)
    torch.manual_seed(0)
    cls = build_backbone(name, width=8, num_classes=5).double()
    out = cls(x)  # train mode, batch 1
    assert out.shape == (1, 5) and out.dtype == torch.float64
    out.sum().backward()
    assert all(p.grad is not None for p in cls.parameters())
    rc = build_backbone(name, width=8, num_classes=5, return_conv=True).eval()
    assert rc(x.float()).shape == (1, 64 * 2 * 1 * 1)  # (1,2,2) max-pool of 2x2x2, flattened


def test_return_conv_is_maxpooled_conv5_in_cthw_order() -> None:
    torch.manual_seed(0)
    model = build_backbone("r3d", width=4, return_conv=True).eval()
    x = torch.rand(2, 3, 16, 64, 80)
    with torch.no_grad():
        conv5 = model.forward_features(x)
        out = model(x)
    assert conv5.shape == (2, 32, 2, 4, 5)
    pooled = conv5[:, :, :, :4:2, :4:2].maximum(conv5[:, :, :, 1:4:2, :4:2])
    pooled = pooled.maximum(conv5[:, :, :, :4:2, 1:4:2]).maximum(conv5[:, :, :, 1:4:2, 1:4:2])
    assert out.shape == (2, 32 * 2 * 2 * 2)
    torch.testing.assert_close(out, pooled.reshape(2, -1), rtol=0, atol=0)


@pytest.mark.parametrize("bad", ["resnet", "r2plus1d", "", "c3d "])
def test_unknown_name_lists_valid_ones(bad: str) -> None:
    with pytest.raises(ValueError, match="c3d, r3d, r21d, r3d18"):
        build_backbone(bad)


def test_bad_sizes_raise() -> None:
    with pytest.raises(ValueError, match="width"):
        build_backbone("r3d", width=0)
    with pytest.raises(ValueError, match="num_classes"):
        build_backbone("r3d", num_classes=0)


# --------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("ref_name", list(CONFIGS))
def test_forward_eval_matches_original(ref_name: str, forward_ref) -> None:
    name, opts = CONFIGS[ref_name]
    x = torch.from_numpy(forward_ref["x_uint8"]).float() / 255
    for return_conv in (False, True):
        model = fill_weights(build_backbone(name, return_conv=return_conv, **opts)).eval()
        with torch.no_grad():
            out = model(x)
        ref = reference_output(forward_ref, ref_name, return_conv, "eval")
        assert (
            out.shape
            == ref.shape
            == tuple(REF[ref_name][f"output_shape_return_conv_{return_conv}"])
        )
        assert out.dtype == torch.float32
        assert scaled_error(out, ref) <= 1e-4


@pytest.mark.parametrize("ref_name", list(CONFIGS))
def test_forward_train_float64_matches_original(ref_name: str, forward_ref) -> None:
    """Batch-statistics BN amplifies float32 rounding (reference README), so run in float64.

    Measured against the float32 reference: <= 1e-4 scaled; the bound leaves room for it.
    """
    name, opts = CONFIGS[ref_name]
    x = torch.from_numpy(forward_ref["x_uint8"]).double() / 255
    model = fill_weights(build_backbone(name, **opts)).double().train()
    with torch.no_grad():
        conv5 = model.forward_features(x)  # one trunk pass for both heads (forward = head(trunk))
        for return_conv in (False, True):
            model.return_conv = return_conv
            out = model.forward_head(conv5)
            assert out.dtype == torch.float64
            ref = reference_output(forward_ref, ref_name, return_conv, "train")
            assert scaled_error(out, ref) <= 1e-3


# --------------------------------------------------------------------------- loading


def original_pretrain_checkpoint(model: nn.Module, prefix: str = "") -> dict:
    """What the original train_ssl.py saves."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model(torch.rand(2, 3, 8, 32, 32)).sum().backward()
    opt.step()
    return {
        "opt": argparse.Namespace(lr=0.01, model="r3d", nce_k=1024, nce_t=0.07, neg="repeat"),
        "model": {prefix + k: v.clone() for k, v in model.state_dict().items()},
        "contrast": {
            "params": torch.tensor([1024.0, 0.07, -1, -1, 0.5]),
            "memory_l": torch.rand(10, 64),
        },
        "optimizer": opt.state_dict(),
        "epoch": 240,
    }


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_load_original_pretraining_checkpoint_strict(tmp_path: Path, prefix: str) -> None:
    torch.manual_seed(0)
    src = build_backbone("r3d", width=8)
    path = tmp_path / "ckpt_epoch240.pth"
    torch.save(original_pretrain_checkpoint(src, prefix), path)
    torch.manual_seed(1)
    dst = build_backbone("r3d", width=8)
    report = load_weights(dst, path)
    assert isinstance(report, LoadReport) and report.ok
    assert report.loaded == list(dst.state_dict())
    assert_same_weights(src, dst)
    assert str(path) in str(report) and "Loaded 72 of 72" in str(report)


def test_load_project_and_raw_and_finetuned_formats(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = build_backbone("c3d", width=4, num_classes=7)
    sd = src.state_dict()
    ours = {
        "model": sd,
        "contrast": {"memory_v1": torch.rand(5, 32)},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]},
        "scheduler": {"milestones": {45: 1, 90: 1}, "gamma": 0.2},
        "epoch": 3,
        "rng": {"torch": torch.get_rng_state(), "python": [3, [1, 2, 3], None]},
        "config": {"preset": "tiny", "width": 4},
    }
    for i, obj in enumerate([ours, {"model": sd}, sd, dict(sd)]):
        path = tmp_path / f"ckpt{i}.pt"
        torch.save(obj, path)
        dst = build_backbone("c3d", width=4, num_classes=7)
        assert load_weights(dst, path).ok
        assert_same_weights(src, dst)
    dst = build_backbone("c3d", width=4, num_classes=7).double()  # in-memory, other dtype
    assert load_weights(dst, ours).ok
    assert dst.linear.weight.dtype == torch.float64
    torch.testing.assert_close(dst.linear.weight.float(), src.linear.weight, rtol=0, atol=0)


def test_classifier_from_pretraining_checkpoint_non_strict(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = build_backbone("r3d", width=8)
    path = tmp_path / "pretrained.pth"
    torch.save(original_pretrain_checkpoint(src), path)
    clf = build_backbone("r3d", width=8, num_classes=101)
    head_before = clf.linear.weight.clone()
    with pytest.raises(CheckpointMismatchError, match=r"linear\.weight"):
        load_weights(clf, path)  # strict: the head is missing
    report = load_weights(clf, path, strict=False)
    assert report.missing == ["linear.weight", "linear.bias"]
    assert report.unexpected == [] and report.mismatched == []
    assert len(report.loaded) == 72
    text = str(report)
    assert "Missing (2" in text and "linear.bias" in text and "classifier head" in text
    torch.testing.assert_close(clf.linear.weight, head_before, rtol=0, atol=0)
    torch.testing.assert_close(
        clf.conv1.temporal_spatial_conv.weight, src.conv1.temporal_spatial_conv.weight
    )


def test_other_architecture_fails_strict_and_lists_keys(tmp_path: Path) -> None:
    path = tmp_path / "c3d.pth"
    torch.save({"model": build_backbone("c3d", width=8).state_dict()}, path)
    r3d = build_backbone("r3d", width=8)
    before = {k: v.clone() for k, v in r3d.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_weights(r3d, path)
    msg = str(err.value)
    assert "conv3a.weight" in msg  # unexpected
    assert "conv1.temporal_spatial_conv.weight" in msg  # missing
    assert "another architecture" in msg
    assert err.value.report.unexpected and err.value.report.missing
    for k, v in r3d.state_dict().items():  # nothing was loaded
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_shape_mismatch_strict_raises_non_strict_skips() -> None:
    src = build_backbone("r3d", width=8, num_classes=101).state_dict()
    dst = build_backbone("r3d", width=8, num_classes=51)
    with pytest.raises(
        CheckpointMismatchError, match=r"linear.weight: checkpoint \[101, 64\] vs model \[51, 64\]"
    ):
        load_weights(dst, src)
    report = load_weights(dst, src, strict=False)
    assert [k for k, _, _ in report.mismatched] == ["linear.weight", "linear.bias"]
    assert report.mismatched[0][1:] == ((101, 64), (51, 64))
    assert report.missing == [] and len(report.loaded) == 72
    assert "Shape mismatches (2" in str(report)


class _RunsCode:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"echo pwned > {shlex.quote(str(self.target))}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused(tmp_path: Path, writer: str) -> None:
    side_effect = tmp_path / "pwned.txt"
    obj = {"model": build_backbone("r3d", width=4).state_dict(), "opt": _RunsCode(side_effect)}
    path = tmp_path / "evil.pth"
    if writer == "torch.save":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=r"refused .* for safety") as err:
        load_weights(build_backbone("r3d", width=4), path)
    assert str(path) in str(err.value)
    assert isinstance(err.value, RuntimeError)
    assert not side_effect.exists()


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "ckpt.pth"
    with pytest.raises(FileNotFoundError, match="nope"):
        load_weights(build_backbone("r3d", width=4), path)


def test_not_a_state_dict_raises() -> None:
    with pytest.raises(ValueError, match="no state dict"):
        load_weights(build_backbone("r3d", width=4), {"epoch": 3, "lr": 0.1})


def test_cuda_checkpoint_maps_to_model_device(tmp_path: Path, monkeypatch) -> None:
    """A checkpoint saved on a GPU (storages tagged cuda:0) loads on a CUDA-less machine."""
    torch.manual_seed(0)
    src = build_backbone("r21d", width=4)
    path = tmp_path / "gpu.pth"
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save({"model": src.state_dict(), "epoch": 1}, path)
    if not torch.cuda.is_available():  # the file really asks for CUDA
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    dst = build_backbone("r21d", width=4)
    assert load_weights(dst, path).ok
    assert_same_weights(src, dst)
    assert all(v.device == torch.device("cpu") for v in dst.state_dict().values())


def test_checkpoint_storages_are_mapped_to_the_model_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logic the CUDA case of the test below exercises, on any machine: ``load_weights`` reads
    the file straight onto the device of the model's parameters (here "meta", standing in
    for a GPU), and the loaded tensors end up there."""
    src = build_backbone("r3d", width=4)
    path = tmp_path / "cpu.pth"
    torch.save({"model": src.state_dict()}, path)
    seen: list[object] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("map_location"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    dst = build_backbone("r3d", width=4).to("meta")
    assert load_weights(dst, path).ok
    assert [torch.device(d) for d in seen] == [torch.device("meta")]
    assert all(v.device.type == "meta" for v in dst.state_dict().values())


# The real devices of this machine: CPU everywhere, CUDA where there is one. Built at
# collection time, so a CPU-only run has one case here rather than a skipped one.
REAL_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", REAL_DEVICES)
def test_cpu_checkpoint_loads_onto_a_model_on_each_real_device(tmp_path: Path, device: str) -> None:
    src = build_backbone("r3d", width=4)
    path = tmp_path / "cpu.pth"
    torch.save({"model": src.state_dict()}, path)
    dst = build_backbone("r3d", width=4).to(device)
    assert load_weights(dst, path).ok
    assert dst.conv1.temporal_spatial_conv.weight.device.type == device
    assert_same_weights(src, dst.cpu())
