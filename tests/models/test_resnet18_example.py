"""examples/resnet18.py: a torchvision-style ResNet-18 in plain torch (docs/models.md), loaded as file.py:function."""

import json
from pathlib import Path

from edgecompress.cli import main
from edgecompress.core.models import load_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "resnet18.py"


def test_it_has_torchvision_resnet18s_parameters_and_names():
    model = load_model(f"{EXAMPLE}:resnet18").module
    state = model.state_dict()
    # torchvision's resnet18: 11,689,512 parameters with 1000 classes; the 512x1000 head becomes 512x10
    assert sum(p.numel() for p in model.parameters()) == 11_689_512 - 513 * 1000 + 513 * 10 == 11_181_642
    assert {k: tuple(v.shape) for k, v in state.items() if k in ("layer2.0.downsample.0.weight", "layer4.1.bn2.running_var", "fc.weight")} == {
        "layer2.0.downsample.0.weight": (128, 64, 1, 1), "layer4.1.bn2.running_var": (512,), "fc.weight": (10, 512),
    }
    assert len(state) == 122  # torchvision's resnet18 state_dict has 122 entries


def test_inspect_folds_its_twenty_batch_norms_and_shrinks_only_convolutions_and_the_head(tmp_path, capsys):
    out = tmp_path / "insp"
    # 12MB: int8 alone fits (11.2 MB), so no route is pruned with Torch-Pruning (1.4 s); the cuts are float32's
    assert main(["inspect", f"{EXAMPLE}:resnet18", "--input-shape", "1,3,32,32", "--target-size", "12MB", "--out", str(out)]) == 0
    doc = json.loads((out / "layers.json").read_text())
    folded = [row["name"] for row in doc["layers"] if row["folds_at_export"]]
    assert len(folded) == 20 and doc["target"]["folded"] == folded
    assert not any("bn" in cut["layer"] or "downsample.1" in cut["layer"] for cut in doc["target"]["cuts"])
    assert doc["target"]["int8_kept_float"] == []
    assert "batch-norm folds into the layer before it at export, so it is not shrunk" in capsys.readouterr().out
