"""report.html in a real browser (Debian's headless Chromium): no console errors, every image renders, the
numbers and the per-layer paths are on the page, and a sweep in DIR/sweep adds its curve."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct

import pytest

from edgecompress.orchestration.curves import sweep
from edgecompress.reporting.report import write_run_outputs
from tests.report.chromium import Chromium


@pytest.fixture(scope="module")
def browser():
    chromium = Chromium()
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def with_sweep(pruned_run, small_digits_task, tmp_path_factory):
    """A copy of the small run with a small sweep saved in DIR/sweep, its outputs written again."""
    result = pruned_run
    out = tmp_path_factory.mktemp("with-sweep") / "run"
    shutil.copytree(result.out_dir, out)
    sweep(result.baseline_model, small_digits_task, out / "sweep", levels=(0.5, 0.9), methods=("unstructured",), finetune_epochs=1)
    copied = dataclasses.replace(result, out_dir=out)
    write_run_outputs(copied, (1, 1, 8, 8))
    return copied


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


def _assert_renders(page, out, names):
    assert page.errors == [], page.errors
    assert [img["alt"] for img in page.images] == list(names)
    for img in page.images:
        assert img["error"] == "" and (img["width"], img["height"]) == _png_size(out / "plots" / img["alt"]), img


def test_demo_report_loads_without_console_errors_and_every_image_renders(demo_run, browser):
    result, metrics = demo_run
    page = browser.open(result.out_dir / "report.html")
    _assert_renders(page, result.out_dir, ["stages.png", "layers.png", "weights.png"])
    assert page.title == "edgecompress report: DigitsCNN on digits"  # the model, not only the task
    assert f"{metrics['final']['score']:.2f}%" in page.text and f"{metrics['final']['storage_bytes'] / 1000:.1f} KB" in page.text
    for name in ("stages.png", "layers.png", "weights.png"):  # the README's top-level copies are the same files
        assert (result.out_dir / name).read_bytes() == (result.out_dir / "plots" / name).read_bytes()


def test_report_shows_baseline_vs_final_numbers_and_layer_paths(pruned_run, browser):
    result = pruned_run
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    page = browser.open(result.out_dir / "report.html")
    _assert_renders(page, result.out_dir, ["stages.png", "layers.png", "weights.png"])
    text = page.text
    for m in (metrics["baseline"], metrics["final"]):
        assert f"{m['score']:.2f}%" in text
        assert f"{m['params']:,}" in text and f"{m['nonzero_params']:,}" in text and f"{m['macs']:,}" in text
        assert f"{m['latency_ms']['batch_1'] * 1000:.1f} us" in text and f"{m['latency_ms']['batch_256']:.3f} ms" in text
        assert f"{m['storage_bytes'] / 1000:.1f} KB" in text and f"{m['artifact_bytes'] / 1000:.1f} KB" in text
    base, final = metrics["baseline"], metrics["final"]
    assert f"final / baseline\t{final['score'] - base['score']:+.2f}" in text
    assert f"{final['latency_ms']['batch_256'] / base['latency_ms']['batch_256']:.3g}x" in text
    assert f"{final['macs'] / base['macs']:.3g}x" in text
    assert "conv1\tConv2d\t32x1x3x3\t16x1x3x3\t144 of 288\tint8 per channel\tchannels 32 -> 16 out; stored as int8 per channel" in text
    assert "No sparsity sweep in this run" in text


def test_a_sweep_in_the_run_directory_adds_its_curve(with_sweep, browser):
    page = browser.open(with_sweep.out_dir / "report.html")
    _assert_renders(page, with_sweep.out_dir, ["stages.png", "layers.png", "weights.png", "sweep.png"])
    assert "Sweet spots of the sweep" in page.text and "unstructured: " in page.text


def test_the_browser_check_catches_a_broken_page(browser, tmp_path):
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        '<!doctype html><html><head><title>broken</title></head><body>'
        '<img alt="corrupt" src="data:image/png;base64,iVBORw0KGgoAAAAA"><img alt="missing" src="missing.png">'
        '<script>console.error("boom")</script></body></html>'
    )
    page = browser.open(page_file)
    assert any("boom" in e for e in page.errors) and any("missing.png" in e for e in page.errors)
    assert [(img["alt"], img["width"], bool(img["error"])) for img in page.images] == [("corrupt", 0, True), ("missing", 0, True)]
