"""report.html: one self-contained page (tables and the PNGs inlined), readable offline and mailable.

Rendered by a jinja2 template with autoescaping: every value from a run (names, paths, a user's layer names)
is escaped by the template, never by hand. A Content-Security-Policy forbids every fetch except inline data:
a page that referred to any outside file would show errors in the browser's console, and the browser test
(tests/report) would fail.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from edgecompress.core.sizes import format_bytes
from edgecompress.core.tasks.task import GENERATIONS_FILE
from edgecompress.reporting.latency_noise import speedup
from edgecompress.reporting.report.layer_paths import LayerPath
from edgecompress.reporting.summary import left_as_is_lines

CAPTIONS = {
    "stages.png": "Size on disk, metric and latency (batch 1 and 256, median relative to the baseline; bars: the p25-p75 range of the ratio) of each stage's artifact.",
    "layers.png": "Parameters and MACs per layer, baseline vs compressed (before quantization).",
    "weights.png": "Weight histograms of the largest layers, in float before int8 quantization: before (grey) and after "
    "(blue, non-zero weights only). int8 scales are per channel, so no grid is drawn; the table above names the values the file holds.",
    "sweep.png": "Metric vs sparsity and vs packed size, from the sweep in sweep/ (stars: sweet spots).",
}
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ policy|safe }}">
<link rel="icon" href="data:,">
<title>edgecompress report: {{ model }} on {{ task }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; } tr.ratio td { font-weight: bold; background: #f7fbf7; }
img { max-width: 100%; } figure { margin: 1.5em 0; } .note { color: #555; font-size: 0.9em; }
</style></head><body>
<h1>edgecompress report: {{ model }} on {{ task }}</h1>
<p><strong>{{ headline }}</strong></p>
<h2>Baseline vs final</h2>
<table><tr><th>model</th><th>{{ metric }}</th><th>artifact</th><th>size on disk</th><th>packed (.ecz)</th><th>params</th>
<th>non-zero</th><th>MACs</th><th>latency b1</th><th>latency b256</th><th>stage time</th></tr>
{% for row in model_rows %}{{ table_row(row, (0, 2)) }}
{% endfor %}{% if ratio_row %}{{ table_row(ratio_row, (0,), "ratio") }}
{% endif %}</table>
<p class="note">Every score is computed by ONNX Runtime on the artifact named in its row, over the whole
evaluation set. Size is the file's size on disk; packed is the size of the .ecz file that `edgecompress unpack`
turns back into that exact ONNX file (zeros stored as a bitmask, entropy-coded). Latency: ONNX Runtime, CPU, one thread, median of interleaved
repeats in this run; compare ratios, absolute times drift on shared machines.</p>
{% if generations %}<h2>What the models write</h2>
<table><tr><th>prompt</th>{% for name in generations.names %}<th>{{ name }}</th>{% endfor %}</tr>
{% for row in generations.rows %}<tr>{% for cell in row %}<td class="text"><pre>{{ cell }}</pre></td>{% endfor %}</tr>
{% endfor %}</table>
<p class="note">Each prompt continued greedily by the original model's file and by the shipped file, both run by
ONNX Runtime with their key/value cache (generations.json).</p>{% endif %}
{% if path_rows %}<h2>Which path each layer took</h2>
<table><tr><th>layer</th><th>type</th><th>weight shape before</th><th>after</th><th>non-zero weights after (of before)</th>
<th>stored in the final ONNX as</th><th>path</th></tr>
{% for row in path_rows %}{{ table_row(row, (0, 1, 5, 6)) }}
{% endfor %}</table>
<p class="note">Read from the models themselves: shapes and zeros from the last PyTorch form, the storage type
and the int8 values from the final ONNX file's weights.</p>{% endif %}
{% if left_as_is %}<h2>Layers left as they were</h2><ul>{% for line in left_as_is %}<li>{{ line }}</li>{% endfor %}</ul>
<p class="note">Selected by a stage but left whole or in float, and why (metrics.json: left_unpruned, left_float).</p>{% endif %}
<h2>Where it runs</h2><p class="note">{{ int8.text }}</p>{% if int8.nodes %}<table><tr><th>integer node</th><th>op</th><th>outputs checked</th><th>off by more than one step</th><th>largest |weight|</th></tr>{% for row in int8.nodes %}{{ table_row(row, (0, 1)) }}{% endfor %}</table>{% endif %}
<h2>Figures</h2>
{% for figure in figures %}<figure><img alt="{{ figure.name }}" src="data:image/png;base64,{{ figure.data }}"><figcaption>{{ figure.caption }} <span class="note">(plots/{{ figure.name }})</span></figcaption></figure>{% endfor %}
{% if sweet_spots is none %}<p class="note">No sparsity sweep in this run (run <code>edgecompress sweep --out DIR/sweep</code> first to see the curve here).</p>{% else %}<p>Sweet spots of the sweep (highest sparsity within {{ tolerance }} of the baseline after fine-tuning): {{ sweet_spots }}.</p>{% endif %}
<p class="note">{{ environment }}; seed {{ seed }}.</p>
</body></html>
"""

ROW = """{% macro table_row(cells, text_columns, css="") -%}
<tr{% if css %} class="{{ css }}"{% endif %}>{% for cell in cells %}<td{% if loop.index0 in text_columns %} class="text"{% endif %}>{{ cell }}</td>{% endfor %}</tr>
{%- endmacro %}"""


def render_report(result, document: dict, images: dict[str, Path], paths: list[LayerPath] = (), sweep=None) -> str:
    import jinja2  # only runs that write a report need it

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = environment.from_string(ROW + TEMPLATE)
    metric = result.task.metric
    env = document["environment"]
    model_rows, ratio_row = _model_rows(result)
    return template.render(
        policy=POLICY,
        task=result.task.name,
        model=type(result.baseline_model).__name__,  # the user's model, by its class
        metric=metric.name,
        headline=_headline(result, document),
        model_rows=model_rows,
        ratio_row=ratio_row,
        path_rows=[_path_cells(p) for p in paths],
        generations=_generations(result.out_dir / GENERATIONS_FILE),
        left_as_is=left_as_is_lines(result),
        int8=_int8(result, env),
        figures=[
            {"name": name, "caption": CAPTIONS.get(name, name), "data": base64.b64encode(Path(path).read_bytes()).decode()}
            for name, path in images.items()
        ],
        sweet_spots=_sweet_spots(sweep, metric.unit),
        tolerance=f"{sweep.tolerance:g}" if sweep is not None else "",
        environment=", ".join(f"{k} {v}" for k, v in env.items() if v),
        seed=result.seed,
    )


def _generations(path: Path) -> dict | None:
    """The side-by-side continuations a task's ship step wrote in this run, as table rows (None: there are none)."""
    if not path.is_file():
        return None
    rows = json.loads(path.read_text(encoding="utf-8"))
    names = [name for name in ("original", "compressed") if rows and name in rows[0]]
    return {"names": names, "rows": [[row["prompt"], *(row[name] for name in names)] for row in rows]}


def _headline(result, document: dict) -> str:
    unit = result.task.metric.unit
    summary = document["summary"]
    conditions = summary.get("latency_conditions", {})
    base_latency, final_latency = result.baseline.latency.get(256), result.final.latency.get(256)
    speed = speedup(base_latency, final_latency, 256, conditions.get("load_average_1min"), conditions.get("cpus") or 1) if base_latency and final_latency else None
    return (
        f"{result.task.metric.name}: {result.baseline.score:.2f}{unit} → {result.final.score:.2f}{unit} "
        f"({summary['score_change']:+.2f}); file {format_bytes(result.baseline.artifact_bytes)} → "
        f"{format_bytes(result.final.artifact_bytes)} ({summary['size_ratio']:.1f}x smaller)"
        + (f"; {speed.headline()}" if speed else "")
    )


def _int8(result, env: dict) -> dict:
    """Where the numbers were measured and which CPU classes the int8 artifact computes exactly on."""
    record = result.final.details.get("int8")
    measured = f"Measured on a {env.get('cpu_class')} CPU ({env.get('cpu')}). "
    if not record:
        return {"text": f"{measured}No int8 stage.", "nodes": []}
    exactness = record["exactness"]
    verdict = (
        f"exact here: {100 * exactness['off_fraction']:.3f}% of {len(exactness['nodes'])} integer nodes' outputs off"
        if exactness["exact"] else f"NOT exact here: {100 * exactness['off_fraction']:.2f}% of integer outputs off"
    )
    text = (
        f"{measured}Target {record['target']} ({record['resolved_target']}): weights stored in "
        f"{record['weight_bits']} bits, {record['why']}. Integer nodes recomputed exactly on "
        f"{exactness['batches']} calibration batches: {verdict}."
    )
    if record.get("repaired"):
        text += f" Repaired: {record['repaired']['why']}; weights rewritten within +-64."
    if record.get("host_is_target") is False:
        text += " This machine is not the target: its int8 kernels differ, so its scores are not the target's."
    text += " `edgecompress verify` runs the artifact on an emulated CPU of another class."
    nodes = [
        (n["node"], n["op"], f"{n['outputs']:,}", f"{100 * n['off_fraction']:.3f}%", n["weight_max_abs"] if n["weight_max_abs"] is not None else "-")
        for n in exactness["nodes"]
    ]
    return {"text": text, "nodes": nodes}


def _model_rows(result) -> tuple[list[tuple], tuple | None]:
    """One row of cells per model (baseline, each stage), and the final / baseline ratios (None without stages)."""
    base = result.baseline
    rows = []
    for m in [base, *result.stages]:
        lat = {b: v.median_ms for b, v in m.latency.items()}
        rows.append((
            m.name, f"{m.score:.2f}{result.task.metric.unit}", m.artifact or "-",
            f"{format_bytes(m.artifact_bytes)} ({base.artifact_bytes / m.artifact_bytes:.1f}x)",
            f"{format_bytes(m.storage_bytes)} ({base.artifact_bytes / m.storage_bytes:.1f}x)" if m.storage_bytes else "-",
            f"{m.params:,}", f"{m.nonzero_params:,}", f"{m.macs:,}",
            f"{lat.get(1, float('nan')) * 1000:.1f} us", f"{lat.get(256, float('nan')):.3f} ms", f"{m.seconds:.1f} s",
        ))
    if not result.stages:
        return rows, None
    final = result.final

    def ratio(b, f):
        return f"{f / b:.3g}x" if b and f is not None else "-"

    lat = {b: ratio(base.latency[b].median_ms, final.latency[b].median_ms) for b in base.latency if b in final.latency}
    return rows, (
        "final / baseline", f"{final.score - base.score:+.2f}", "",
        ratio(base.artifact_bytes, final.artifact_bytes), ratio(base.storage_bytes, final.storage_bytes),
        ratio(base.params, final.params), ratio(base.nonzero_params, final.nonzero_params), ratio(base.macs, final.macs),
        lat.get(1, "-"), lat.get(256, "-"), "",
    )


def _path_cells(p: LayerPath) -> tuple:
    return (
        p.name, p.kind, "x".join(map(str, p.shape_before)), "x".join(map(str, p.shape_after)) if p.shape_after else "-",
        f"{p.nonzero_after:,} of {p.weights_before:,}", p.stored_as, p.path,
    )


def _sweet_spots(sweep, unit: str) -> str | None:
    if sweep is None:
        return None
    return "; ".join(
        f"{method}: {spot.level:.0%} sparse at {spot.score:.2f}{unit}, packed {format_bytes(spot.storage_bytes)}"
        if spot else f"{method}: none within {sweep.tolerance:g}"
        for method, spot in sweep.sweet_spots.items()
    )
