"""Write a run's outputs: metrics.json, plots, report.html (each file atomically)."""

from __future__ import annotations

import json

from edgecompress.files import atomic_write_text
from edgecompress.inspect.layers import layer_table
from edgecompress.plotting.layer_charts import plot_layers
from edgecompress.plotting.weight_histograms import plot_weight_histograms
from edgecompress.report.html import render_report
from edgecompress.report.metrics import metrics_document
from edgecompress.report.plots import plot_stages


def write_run_outputs(result, example_input_shape: tuple[int, ...]) -> dict:
    """Write metrics.json, stages.png, layers.png, weights.png and report.html into the run's directory."""
    out = result.out_dir
    document = metrics_document(result)
    images = {
        "stages.png": plot_stages(result, out / "stages.png"),
        "layers.png": plot_layers(
            {
                "baseline": layer_table(result.baseline_model, example_input_shape),
                "compressed": layer_table(result.final_torch_model, example_input_shape),
            },
            out / "layers.png",
            title="baseline vs compressed (before quantization)",
        ),
        "weights.png": plot_weight_histograms(result.baseline_model, result.final_torch_model, out / "weights.png"),
    }
    atomic_write_text(out / "report.html", render_report(result, document, images))
    atomic_write_text(out / "metrics.json", json.dumps(document, indent=2) + "\n")
    return document
