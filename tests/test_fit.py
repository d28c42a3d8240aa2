import json

import pytest

import edgecompress as ec
from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.orchestration.search.fit import Candidate, Targets, check_targets, choose, fit, parse_latency

CANDIDATES = [
    ("int8", [ec.Quantize()]),
    ("channels-50%, int8", [ec.Prune(pattern="channel", amount=0.5), ec.Finetune(epochs=4), ec.Quantize()]),
    ("channels-75%, int8", [ec.Prune(pattern="channel", amount=0.75), ec.Finetune(epochs=4), ec.Quantize()]),
]
# no fine-tuning: cheap runs whose sizes and latencies still differ
QUICK = [("int8", [ec.Quantize()]), ("channels-75%", [ec.Prune(pattern="channel", amount=0.75)])]


@pytest.fixture(scope="module")
def fitted(trained_cnn, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    result = fit(trained_cnn, digits, out, max_bytes=30_000, max_drop=5.0, candidates=CANDIDATES)
    return out, result


@pytest.fixture(scope="module")
def too_fast(trained_cnn, digits, tmp_path_factory):
    """A latency budget no candidate can meet (1% of the baseline's), with the budget on the ONNX file."""
    out = tmp_path_factory.mktemp("fit-latency")
    result = fit(trained_cnn, digits, out, max_latency="0.01x", size_of="onnx", candidates=QUICK)
    return out, result


def test_smallest_candidate_within_both_targets_is_chosen(fitted):
    out, result = fitted
    fitting = [c for c in result.candidates if c.size_bytes <= 30_000 and c.drop <= 5.0]
    assert result.met_targets and result.chosen == min(fitting, key=lambda c: c.size_bytes)
    assert result.chosen.size_bytes == (out / result.chosen.directory / "final.ecz").stat().st_size
    doc = json.loads((out / "fit.json").read_text())
    assert doc["chosen"]["label"] == result.chosen.label and len(doc["candidates"]) == 3
    assert "optimistic" in doc["message"]  # no validation data: chosen on the evaluation set, and it says so
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_pareto_front_has_no_dominated_candidate(fitted):
    _, result = fitted
    front = [c for c in result.candidates if c.label in result.pareto]
    for c in front:
        assert not any(o.size_bytes < c.size_bytes and o.drop < c.drop for o in result.candidates)


def test_impossible_target_returns_the_best_found_with_a_message(fitted):
    _, result = fitted
    honest = choose(result.candidates, Targets(max_bytes=100, max_drop=0.0), selected_on_eval=False)
    assert not honest.met_targets and "no candidate meets size <= 100 B (packed), drop <= 0" in honest.message
    assert honest.chosen == min(result.candidates, key=lambda c: c.size_bytes)
    assert "still misses size" in honest.message


def test_candidate_latency_is_the_runs_batch_256_median_and_ratio(too_fast):
    out, result = too_fast
    for c in result.candidates:
        metrics = json.loads((out / c.directory / "metrics.json").read_text())
        final, base = metrics["final"]["latency_ms"]["batch_256"], metrics["baseline"]["latency_ms"]["batch_256"]
        assert c.latency_ms == final and c.latency_ratio == pytest.approx(final / base)
        assert 0 < c.latency_ratio < 10


def test_size_of_onnx_measures_the_runnable_file(too_fast):
    out, result = too_fast
    for c in result.candidates:
        assert c.size_bytes == (out / c.directory / "final.onnx").stat().st_size
    doc = json.loads((out / "fit.json").read_text())
    assert doc["targets"] == {
        "max_bytes": None, "max_drop": None, "latency_ratio": 0.01, "latency_ms": None, "size_of": "onnx", "latency_batch": 256,
    }


def test_unmeetable_latency_says_so_and_returns_the_fastest(too_fast):
    _, result = too_fast
    assert not result.met_targets and not any(c.fits for c in result.candidates)
    assert result.message.startswith("no candidate meets latency <= 0.01x the baseline's at batch 256; best found: ")
    assert result.chosen == min(result.candidates, key=lambda c: c.latency_ratio)
    assert "still misses latency" in result.message


def _candidate(label, size, drop, ratio, ms=1.0):
    return Candidate(label, label, size, 90.0 - drop, drop, latency_ms=ms, latency_ratio=ratio)


SYNTHETIC = [
    _candidate("mild", 40_000, 0.1, 0.9, ms=0.9),
    _candidate("medium", 15_000, 0.4, 0.5, ms=0.5),
    _candidate("strong", 8_000, 1.5, 0.3, ms=0.3),
]


@pytest.mark.parametrize(
    "targets, chosen, met",
    [
        (Targets(max_bytes=20_000, max_drop=1.0), "medium", True),  # strong is smaller but loses too much
        (Targets(latency_ratio=0.6, max_drop=1.0), "medium", True),
        (Targets(latency_ratio=0.6), "strong", True),  # no drop limit: the smallest within the budget
        (Targets(latency_ms=0.35, max_drop=1.0), "strong", False),  # only strong is fast enough: budget first
        (Targets(max_bytes=10_000, latency_ratio=0.4, max_drop=0.5), "strong", False),
        (Targets(max_bytes=50_000, max_drop=0.05), "mild", False),  # all within budget: the least loss
        (Targets(max_bytes=1_000, latency_ratio=0.9), "strong", False),  # closest: 8x over vs 15x and 40x
        (Targets(max_bytes=16_000, latency_ratio=0.1), "strong", False),  # closest: latency 3x over (medium 5x)
    ],
)
def test_choice_under_size_latency_and_drop_targets(targets, chosen, met):
    result = choose([Candidate(**c.__dict__) for c in SYNTHETIC], targets, selected_on_eval=False)
    assert (result.chosen.label, result.met_targets) == (chosen, met)
    assert result.message.startswith(f"{chosen}: ") if met else result.message.startswith("no candidate meets")


@pytest.mark.parametrize(
    "text, expected",
    [("0.5", (0.5, None)), ("0.35x", (0.35, None)), ("0.3ms", (None, 0.3)), ("300us", (None, 0.3)), (0.5, (0.5, None))],
)
def test_latency_target_is_a_ratio_or_absolute(text, expected):
    assert parse_latency(text) == expected


def test_bad_targets_are_refused(trained_cnn, digits, tmp_path):
    with pytest.raises(UserError, match="--size-of"):
        fit(trained_cnn, digits, tmp_path / "f", 1000, 1.0, size_of="zip")
    with pytest.raises(UserError, match="--max-drop"):
        fit(trained_cnn, digits, tmp_path / "f", 1000, -1.0)
    with pytest.raises(UserError, match="--max-latency: cannot use 'fast'"):
        check_targets(1.0, "packed", max_latency="fast")
    with pytest.raises(UserError, match="--max-latency: cannot use '0ms'"):
        check_targets(None, "packed", max_latency="0ms")
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--max-drop", "1"], "Missing option '--max-size' or '--max-latency'"),
        (["fit", "--max-latency", "quick"], "--max-latency: cannot use 'quick'"),
        (["fit", "--max-latency", "2s"], "--max-latency: cannot use '2s'"),
        (["fit", "--max-latency", "0.5", "--size-of", "zip"], "--size-of: must be packed or onnx"),
    ],
)
def test_fit_command_refuses_bad_targets_in_one_line(args, message, capsys, tmp_path):
    out = tmp_path / "out"
    code = main([*args, "--out", str(out)])
    stderr = capsys.readouterr().err
    assert code == 2 and message in stderr and stderr.count("\n") == 1
    assert not out.exists()


def _numbers(result):
    return [(c.label, c.directory, c.size_bytes, c.score, c.drop) for c in result.candidates]


def test_parallel_candidates_give_the_same_sizes_scores_and_files(too_fast, trained_cnn, digits, tmp_path):
    out, result = too_fast
    parallel = fit(trained_cnn, digits, tmp_path / "p", max_latency="0.01x", size_of="onnx", candidates=QUICK, jobs=2)
    assert _numbers(parallel) == _numbers(result) and parallel.chosen.label == result.chosen.label
    for c in result.candidates:  # computed in a worker and unpacked here: byte for byte the same artifact
        assert (tmp_path / "p" / c.directory / "final.onnx").read_bytes() == (out / c.directory / "final.onnx").read_bytes()
        assert (tmp_path / "p" / c.directory / "metrics.json").is_file()


def test_killed_fit_resumes_without_rerunning_finished_candidates(too_fast, trained_cnn, digits, tmp_path, monkeypatch):
    import edgecompress.orchestration.pipeline.run as pipeline_run

    _, reference = too_fast
    runs, real = [], pipeline_run.compress

    def compress_until_killed(model, task, stages, *args, **kwargs):
        if len(runs) == limit:
            raise KeyboardInterrupt  # as if the driver were killed during this candidate
        runs.append(type(stages[-1]).__name__)
        return real(model, task, stages, *args, **kwargs)

    monkeypatch.setattr(pipeline_run, "compress", compress_until_killed)
    settings = dict(max_latency="0.01x", size_of="onnx", candidates=QUICK)
    limit = 1
    with pytest.raises(KeyboardInterrupt):
        fit(trained_cnn, digits, tmp_path / "k", **settings)
    assert runs == ["QuantizeStatic"] and (tmp_path / "k" / "candidates" / "01" / "candidate.json").is_file()
    assert not (tmp_path / "k" / "candidates" / "02").exists()  # nothing half-written for the killed candidate
    limit = None
    resumed = fit(trained_cnn, digits, tmp_path / "k", resume=True, **settings)
    assert runs == ["QuantizeStatic", "Prune"]  # only the missing candidate ran
    assert _numbers(resumed) == _numbers(reference)
    fit(trained_cnn, digits, tmp_path / "k", force=True, **settings)  # --force: everything again
    assert runs == ["QuantizeStatic", "Prune", "QuantizeStatic", "Prune"]


def test_jobs_builds_a_process_pool_and_disagreeing_jobs_and_executor_are_refused(trained_cnn, digits, tmp_path, monkeypatch):
    from contextlib import contextmanager

    import edgecompress.orchestration.search.fit as fit_module
    from edgecompress.orchestration.executors import LocalExecutor, ProcessExecutor

    used = []

    @contextmanager
    def record_executor(executor, *args, **kwargs):
        used.append(executor)
        raise KeyboardInterrupt  # stop before any candidate runs
        yield

    monkeypatch.setattr(fit_module, "open_trials", record_executor)
    with pytest.raises(KeyboardInterrupt):
        fit(trained_cnn, digits, tmp_path / "j", max_latency="0.5", candidates=QUICK, jobs=2)
    assert isinstance(used[0], ProcessExecutor) and used[0].jobs == 2
    for executor in (LocalExecutor(), ProcessExecutor(3)):
        with pytest.raises(UserError, match=r"^--jobs: 2 disagrees with the executor given \(local, \d\); give jobs or an executor, not both$"):
            fit(trained_cnn, digits, tmp_path / "e", max_latency="0.5", candidates=QUICK, jobs=2, executor=executor)
    with pytest.raises(UserError, match="^--jobs: only used with --executor local"):
        fit(trained_cnn, digits, tmp_path / "e", max_latency="0.5", candidates=QUICK, jobs=2, executor="ray")
    assert not (tmp_path / "e").exists()
    pool = ProcessExecutor(2)
    with pytest.raises(KeyboardInterrupt):  # jobs that agree with the executor given are fine
        fit(trained_cnn, digits, tmp_path / "a", max_latency="0.5", candidates=QUICK, jobs=2, executor=pool)
    assert used[-1] is pool


def test_resumed_fit_reuses_the_trained_baseline(tmp_path, monkeypatch, capsys):
    import yaml

    import edgecompress.orchestration.recipe.run as recipe_run
    import edgecompress.orchestration.search.fit as fit_module

    trainings, real = [], recipe_run._train
    monkeypatch.setattr(recipe_run, "_train", lambda *args: trainings.append(args[2].model) or real(*args))
    monkeypatch.setattr(fit_module, "default_candidates", lambda: [("int8", [ec.Quantize()])])
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"model": "digits-mlp", "task": "digits", "train": {"epochs": 1}, "seed": 3,
                                     "stages": [{"stage": "quantize", "mode": "dynamic"}]}))
    args = ["fit", "--recipe", str(recipe), "--max-size", "1MB", "--out", str(tmp_path / "f")]
    assert main(args) == 0 and trainings == ["digits-mlp"]
    first = (tmp_path / "f" / "fit.json").read_text()
    assert (tmp_path / "f" / "checkpoints" / "00-trained.safetensors").is_file()
    assert main([*args, "--resume"]) == 0
    assert trainings == ["digits-mlp"]  # the baseline was not trained again
    assert (tmp_path / "f" / "fit.json").read_text() == first  # same baseline: the same candidates are kept
    assert main([*args, "--force"]) == 0 and trainings == ["digits-mlp", "digits-mlp"]
