"""Write a run's outputs: metrics.json, plots (DIR/plots/*.png), report.html (each file atomically)."""

from __future__ import annotations

import json

from edgecompress.inspect.layers import layer_table
from edgecompress.reporting.curve_plots import plot_sweep
from edgecompress.reporting.plotting.layer_charts import plot_layers
from edgecompress.reporting.plotting.weight_histograms import plot_weight_histograms
from edgecompress.reporting.report.html import render_report
from edgecompress.reporting.report.layer_paths import layer_paths
from edgecompress.reporting.report.metrics import metrics_document
from edgecompress.reporting.report.plots import plot_stages
from edgecompress.reporting.report.sweep import find_sweep
from edgecompress.storage.files import atomic_write_bytes, atomic_write_text

PLOTS_DIR = "plots"
TOP_LEVEL_COPIES = ("stages.png", "layers.png", "weights.png")  # where runs before plots/ put them; README names them


def write_run_outputs(result, example_input) -> dict:
    """`example_input`: one sample (a tensor, or named tensors), or its shape. Write metrics.json, plots/{stages,layers,weights}.png (plus plots/sweep.png when DIR/sweep holds a
    sweep) and report.html into the run's directory; every figure of the page is one of those PNGs."""
    out = result.out_dir
    plots = out / PLOTS_DIR
    shape, example = (tuple(example_input), None) if isinstance(example_input, (tuple, list)) else ((), example_input)
    document = metrics_document(result)
    images = {
        "stages.png": plot_stages(result, plots / "stages.png"),
        "layers.png": plot_layers(
            {
                "baseline": layer_table(result.baseline_model, shape, example),
                "compressed": layer_table(result.final_torch_model, shape, example),
            },
            plots / "layers.png",
            title="baseline vs compressed (before quantization)",
        ),
        "weights.png": plot_weight_histograms(result.baseline_model, result.final_torch_model, plots / "weights.png"),
    }
    sweep = find_sweep(out)
    if sweep is not None:
        images["sweep.png"] = plot_sweep(sweep, plots / "sweep.png", result.task.metric)
    for name in TOP_LEVEL_COPIES:
        atomic_write_bytes(out / name, images[name].read_bytes())
    final_onnx = out / result.final.artifact if result.final.artifact else None
    paths = layer_paths(result.baseline_model, result.final_torch_model, final_onnx)
    atomic_write_text(out / "report.html", render_report(result, document, images, paths, sweep))
    atomic_write_text(out / "metrics.json", json.dumps(document, indent=2) + "\n")
    return document
