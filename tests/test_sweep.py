import json

import pytest
import torch

from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.core.measure.params import count_params
from edgecompress.core.results import point_key
from edgecompress.orchestration.curves import points as points_module
from edgecompress.orchestration.curves import sweep, sweep_trials
from edgecompress.storage.files import atomic_write_bytes
from edgecompress.storage.rundir import owned_run_dir
from tests.curves.test_dense_baseline import ResidualCNN


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
    png = (out / "sweep.png").read_bytes()
    assert png[:4] == b"\x89PNG" and int.from_bytes(png[16:20], "big") > 1700  # three panels: sparsity, size, latency


def test_every_point_file_is_timed_against_the_baseline(swept):
    out, result = swept
    keys = [result.baseline.key] + [p.key for p in result.points]
    assert list(result.latencies) == keys
    assert result.latencies[result.baseline.key].ratio_to_baseline == 1.0
    rows = (out / "latency.csv").read_text().splitlines()
    assert rows[0].startswith("point,batch,median_ms") and [r.split(",")[0] for r in rows[1:]] == keys
    for key, lat in result.latencies.items():
        assert lat.batch == 256 and 0 < lat.p25_ms <= lat.median_ms <= lat.p75_ms
        base = result.latencies[result.baseline.key].median_ms
        assert abs(lat.ratio_to_baseline - lat.median_ms / base) < 1e-9


def test_sweet_spot_is_the_highest_level_within_tolerance(swept):
    _, result = swept
    for method, spot in result.sweet_spots.items():
        within = [p for p in result.points if p.method == method and p.finetuned and result.baseline.score - p.score <= 1.0]
        assert spot == (max(within, key=lambda p: p.level) if within else None)


def test_interrupted_sweep_resumes_without_recomputing(swept, trained_cnn, digits, monkeypatch):
    out, result = swept

    def no_export(*args, **kwargs):
        raise AssertionError("a finished point was recomputed")

    monkeypatch.setattr(points_module, "export_model", no_export)
    again = sweep(trained_cnn, digits, out, levels=(0.5, 0.9), methods=("unstructured", "channel"), finetune_epochs=1, tolerance=1.0, resume=True)
    assert again.points == result.points


def test_parallel_sweep_gives_the_same_table_and_resumes(swept, trained_cnn, digits, tmp_path):
    out, result = swept
    # a parallel sweep resuming one killed after 5 points: 3 trials (4 points, whole or half trials) run in 2 workers
    with owned_run_dir(tmp_path / "p", "sweep") as killed:  # what the killed sweep had written
        for key in ("baseline-0-raw", "unstructured-0.5-raw", "unstructured-0.5-ft", "channel-0.5-raw", "channel-0.9-ft"):
            for suffix in (".json", ".onnx", ".ecz"):
                atomic_write_bytes(killed / "points" / f"{key}{suffix}", (out / "points" / f"{key}{suffix}").read_bytes())
    parallel = sweep(trained_cnn, digits, tmp_path / "p", levels=(0.5, 0.9), methods=("unstructured", "channel"), finetune_epochs=1, tolerance=1.0, jobs=2, resume=True)
    assert parallel.points == result.points and parallel.baseline == result.baseline
    assert (tmp_path / "p" / "sweep.csv").read_text() == (out / "sweep.csv").read_text()
    for key in ("channel-0.5-ft", "unstructured-0.9-raw"):  # computed in a worker, byte for byte the same file
        assert (tmp_path / "p" / "points" / f"{key}.onnx").read_bytes() == (out / "points" / f"{key}.onnx").read_bytes()


def test_killed_sweep_recomputes_only_the_missing_points_and_lowrank_is_a_method(trained_cnn, digits, tmp_path, monkeypatch):
    measured, real = [], sweep_trials.measure_point

    def measure_until_killed(model, method, level, finetuned, *rest):
        if len(measured) == limit:
            raise KeyboardInterrupt  # as if the sweep were killed here
        measured.append(point_key(method, level, finetuned))
        return real(model, method, level, finetuned, *rest)

    monkeypatch.setattr(sweep_trials, "measure_point", measure_until_killed)
    settings = dict(levels=(0.5, 0.8), methods=("lowrank",), finetune_epochs=1, tolerance=1.0)
    limit = 3
    with pytest.raises(KeyboardInterrupt):
        sweep(trained_cnn, digits, tmp_path / "k", **settings)
    assert measured == ["baseline-0-raw", "lowrank-0.5-raw", "lowrank-0.5-ft"]
    measured.clear()
    limit = None
    result = sweep(trained_cnn, digits, tmp_path / "k", resume=True, **settings)
    assert measured == ["lowrank-0.8-raw", "lowrank-0.8-ft"]
    assert len(result.points) == 4 and "lowrank" in result.sweet_spots

    factorizable = sum(count_params(getattr(trained_cnn, n)) for n in ("conv1", "conv2", "fc1"))
    for p in result.points:  # factorized models are dense and smaller: the level is the share of parameters removed
        assert p.params == p.nonzero_params
        assert abs((result.baseline.params - p.params) - p.level * factorizable) <= 0.01 * factorizable


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"levels": (1.0,)}, "--levels"),
        ({"methods": ("magic",)}, "--methods: unknown method 'magic'"),
        ({"jobs": 0}, "--jobs: must be at least 1"),
        ({"executor": "slurm"}, "--executor: unknown executor 'slurm'"),
    ],
)
def test_bad_sweep_settings(trained_cnn, digits, tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        sweep(trained_cnn, digits, tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def test_cli_rejects_unparsable_levels(capsys, tmp_path):
    assert main(["sweep", "--levels", "half", "--out", str(tmp_path / "s")]) == 2
    assert "--levels: cannot parse 'half'" in capsys.readouterr().err


def test_smaller_dense_model_matches_the_pruned_parameter_count(trained_cnn, digits, tmp_path):
    from edgecompress.core.measure.params import count_params
    from edgecompress.core.models import DigitsCNN
    from edgecompress.orchestration.curves.dense_baseline import matching_width

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


def test_a_users_cnn_gets_smaller_dense_and_from_scratch_rows(small_digits_task, tmp_path):
    """Any model, not only the built-in ones: its own architecture thinned uniformly to the pruned parameter count,
    and its channel-pruned architecture, both trained from scratch on the pruned points' budget (issue 18)."""
    torch.manual_seed(0)
    model = ResidualCNN(channels=16).eval()
    result = sweep(model, small_digits_task, tmp_path / "u", levels=(0.6,), methods=("channel",), finetune_epochs=1,
                   baseline_epochs=1, small_dense=True, from_scratch=True, latency_batch=8)
    channel, scratch, dense = (next(p for p in result.points if p.method == m and p.finetuned) for m in ("channel", "channel-from-scratch", "dense-small"))
    assert scratch.params == channel.params  # the pruned architecture, retrained
    assert abs(dense.params - channel.params) <= 0.05 * channel.params
    (row,) = result.dense_comparison
    assert (row["params"], row["dense_params"], row["dense_score"]) == (channel.nonzero_params, dense.params, dense.score)
    assert result.scratch_comparison == [{
        "level": 0.6, "method": "channel", "params": channel.params, "finetuned_score": channel.score,
        "from_scratch_score": scratch.score,
        "winner": "fine-tuned" if channel.score > scratch.score else ("from scratch" if scratch.score > channel.score else "tie"),
    }]
    rows = (tmp_path / "u" / "sweep.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["baseline", "channel", "channel", "channel-from-scratch", "dense-small"]
    saved = json.loads((tmp_path / "u" / "sweep.json").read_text())
    assert saved["smaller_dense_comparison"] == result.dense_comparison and saved["from_scratch_comparison"] == result.scratch_comparison
    assert set(result.sweet_spots) == {"channel"}


def test_small_dense_true_refuses_a_model_it_cannot_thin_before_any_work(digits, tmp_path):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(UserError, match="cannot thin Sequential uniformly"):
        sweep(model, digits, tmp_path / "s", small_dense=True)
    with pytest.raises(UserError, match="small_dense: give True"):
        sweep(model, digits, tmp_path / "s", small_dense="yes")
    assert not (tmp_path / "s").exists()
