"""Each pruned layer is reported with the path that makes it pay (structured, block-sparse, sparse kernel, dense) and why."""

from __future__ import annotations

import copy
import json

import torch
from torch import nn

from edgecompress.core.models import DigitsCNN
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.techniques.prune.engine import prune_model
from edgecompress.techniques.prune.sparsity_paths import sparsity_paths


def _pruned(model: nn.Module, config: Prune, example=torch.zeros(1, 1, 8, 8)) -> tuple[nn.Module, dict]:
    torch.manual_seed(0)
    before = copy.deepcopy(model)
    prune_model(model, config, example, train=lambda *a, **k: None)
    return model, sparsity_paths(before, model, config)


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, 10))


def test_removed_channels_take_the_structured_path_with_their_smaller_shape():
    _, paths = _pruned(DigitsCNN(), Prune(pattern="channel", amount=0.5))
    assert {name: p["path"] for name, p in paths.items()} == {n: "structured" for n in ("conv1", "conv2", "fc1", "fc2")}
    assert paths["conv1"]["shape"] == [16, 1, 3, 3] and paths["conv1"]["sparsity"] == 0.0
    assert paths["fc1"]["reason"].startswith("128x256 -> 64x128 weight: a physically smaller dense matrix, 25% of")
    assert paths["fc2"]["reason"].startswith("10x128 -> 10x64 weight")  # the kept classifier loses its inputs
    json.dumps(paths)  # goes into metrics.json as it is


def test_block_sparse_path_only_above_three_quarters_and_only_for_linears():
    _, paths = _pruned(_mlp(), Prune(pattern="block", block=(8, 8), amount=0.9))
    assert paths["0"]["path"] == "block-sparse" and abs(paths["0"]["sparsity"] - 0.9) < 1e-3
    assert "90.0% >= 75% with 8x8 blocks at batch 16: bsr layout" in paths["0"]["reason"]
    assert "the ONNX file runs it dense" in paths["0"]["reason"]
    assert "4" not in paths  # the classifier is kept, so not reported
    _, paths = _pruned(_mlp(), Prune(pattern="block", block=(8, 8), amount=0.5))
    assert paths["2"]["path"] == "dense" and "50.0% < 75%" in paths["2"]["reason"]
    _, paths = _pruned(DigitsCNN(), Prune(pattern="block", block=(8, 8), amount=0.9, layers=("conv2", "fc1")))
    assert paths["conv2"]["path"] == "dense" and "no block-sparse kernel for convolutions" in paths["conv2"]["reason"]
    assert paths["fc1"]["path"] == "block-sparse"  # 128x256 at 90%: pays from batch 16 on


def test_unstructured_layers_take_the_csr_kernel_only_from_90_percent_and_nm_runs_dense():
    _, paths = _pruned(DigitsCNN(), Prune(pattern="unstructured", amount=0.5))
    assert paths["fc1"]["path"] == "dense" and paths["fc1"]["sparsity"] == 0.5
    assert "sparsity 50.0% < 90%: torch CSR breaks even only at 70-95%" in paths["fc1"]["reason"]
    _, paths = _pruned(DigitsCNN(), Prune(pattern="unstructured", amount=0.9))
    assert paths["fc1"]["path"] == "dense" and "128x256 is too small at batch 16" in paths["fc1"]["reason"]
    assert paths["conv2"]["path"] == "dense" and "no sparse kernel for convolutions" in paths["conv2"]["reason"]
    _, paths = _pruned(_mlp(), Prune(pattern="unstructured", amount=0.9))
    assert paths["0"]["path"] == "sparse-kernel" and "90.0% >= 90% at batch 16: torch CSR" in paths["0"]["reason"]
    _, paths = _pruned(DigitsCNN(), Prune(pattern="nm", layers=("fc1",)))
    assert list(paths) == ["fc1"] and "2:4 sparsity needs sparse tensor cores" in paths["fc1"]["reason"]


def test_the_prune_stage_reports_each_layers_path_in_metrics_json(demo_run):
    _, metrics = demo_run
    prune_stage = next(stage for stage in metrics["stages"] if stage["name"] == "prune")
    paths = prune_stage["prune_paths"]
    assert {name: p["path"] for name, p in paths.items()} == {n: "structured" for n in ("conv1", "conv2", "fc1", "fc2")}
