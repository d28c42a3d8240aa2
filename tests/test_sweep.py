import json

import pytest

from edgecompress.cli import main
from edgecompress.curves import sweep
from edgecompress.curves import sparsity_sweep as sweep_module
from edgecompress.errors import UserError


@pytest.fixture(scope="module")
def swept(trained_cnn, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    return out, sweep(trained_cnn, digits, out, levels=(0.5, 0.9), methods=("unstructured", "channel"), finetune_epochs=1, tolerance=1.0)


def test_every_point_is_scored_with_and_without_finetuning(swept):
    out, result = swept
    assert len(result.points) == 2 * 2 * 2
    assert len(list((out / "points").glob("*.onnx"))) == 8 + 1  # every point and the baseline, as files
    for p in result.points:
        if p.method == "unstructured":
            assert p.nonzero_params < p.params
        else:
            assert p.params == p.nonzero_params < result.baseline.params
    saved = json.loads((out / "sweep.json").read_text())
    assert len(saved["points"]) == 8 and (out / "sweep.csv").read_text().count("\n") == 10
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_sweet_spot_is_the_highest_level_within_tolerance(swept):
    _, result = swept
    for method, spot in result.sweet_spots.items():
        within = [p for p in result.points if p.method == method and p.finetuned and result.baseline.score - p.score <= 1.0]
        assert spot == (max(within, key=lambda p: p.level) if within else None)


def test_interrupted_sweep_resumes_without_recomputing(swept, trained_cnn, digits, monkeypatch):
    out, result = swept

    def no_export(*args, **kwargs):
        raise AssertionError("a finished point was recomputed")

    monkeypatch.setattr(sweep_module, "export_onnx", no_export)
    again = sweep(trained_cnn, digits, out, levels=(0.5, 0.9), methods=("unstructured", "channel"), finetune_epochs=1, tolerance=1.0)
    assert again.points == result.points


@pytest.mark.parametrize(
    "kwargs, message",
    [({"levels": (1.0,)}, "--levels"), ({"methods": ("magic",)}, "--methods: unknown method 'magic'")],
)
def test_bad_sweep_settings(trained_cnn, digits, tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        sweep(trained_cnn, digits, tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def test_cli_rejects_unparsable_levels(capsys, tmp_path):
    assert main(["sweep", "--levels", "half", "--out", str(tmp_path / "s")]) == 2
    assert "--levels: cannot parse 'half'" in capsys.readouterr().err


def test_smaller_dense_model_matches_the_pruned_parameter_count(trained_cnn, digits, tmp_path):
    from edgecompress.curves.dense_baseline import matching_width
    from edgecompress.measure.params import count_params
    from edgecompress.models import DigitsCNN

    width = matching_width(DigitsCNN, 10_000)
    assert count_params(DigitsCNN(width)) <= 10_000 < count_params(DigitsCNN(width + 0.02))

    result = sweep(
        trained_cnn, digits, tmp_path / "s", levels=(0.8,), methods=("unstructured",), finetune_epochs=1,
        small_dense=lambda w: DigitsCNN(width=w), baseline_epochs=1,
    )
    (row,) = result.dense_comparison
    pruned = next(p for p in result.points if p.method == "unstructured" and p.finetuned)
    dense = next(p for p in result.points if p.method == "dense-small")
    assert row["params"] == pruned.nonzero_params and dense.params == dense.nonzero_params <= pruned.nonzero_params
    assert dense.params >= 0.9 * pruned.nonzero_params
    expected = "pruned" if pruned.score > dense.score else ("dense" if dense.score > pruned.score else "tie")
    assert row["winner"] == expected
