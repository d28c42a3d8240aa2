"""The demo's final artifact computes the same numbers on every CPU class: checked on emulated CPUs."""

import json

from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.orchestration.verify import verify


def test_the_demo_artifact_scores_and_outputs_the_same_on_emulated_avx2_and_arm64(demo_run):
    result, metrics = demo_run
    report = verify(result.out_dir, "portable")
    by_class = {r.cpu_class: r for r in report.results}
    # qemu reaches AVX2 and arm64 from any x86 host; VNNI only on a VNNI host (this one, or not)
    assert {"x86-avx2", "arm64"} <= set(by_class)
    for cpu in by_class.values():
        assert cpu.score == metrics["final"]["score"], cpu.cpu_class
        assert cpu.max_output_difference == 0.0, cpu.cpu_class
        assert cpu.exactness.exact and cpu.exactness.off_fraction == 0.0, cpu.exactness.summary()
    assert report.consistent


def test_the_ternary_weights_sit_on_plus_minus_64_the_image_exact_on_every_class(demo_run):
    _, metrics = demo_run
    record = metrics["final"]["int8"]
    assert record["target"] == "portable" and record["weight_bits"] == 7
    assert record["exactness"]["exact"] and all(n["weight_max_abs"] <= 64 for n in record["exactness"]["nodes"])
    assert metrics["environment"]["cpu_class"] in ("x86-avx2", "x86-vnni", "arm64")


def test_verify_prints_every_class_and_json(demo_run):
    result, _ = demo_run
    done = CliRunner().invoke(app, ["verify", str(result.out_dir), "--target", "x86-avx2", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["consistent"] and [r["cpu_class"] for r in report["results"]] == ["x86-avx2"]
    assert "not a latency" in report["note"]
