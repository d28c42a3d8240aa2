"""report.html: one self-contained page (tables and the PNGs inlined), readable offline and mailable."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from edgecompress.sizes import format_bytes


def render_report(result, document: dict, images: dict[str, Path]) -> str:
    metric = result.task.metric
    unit = metric.unit
    rows = []
    for m in [result.baseline, *result.stages]:
        lat = {b: v.median_ms for b, v in m.latency.items()}
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(cell))}</td>"
                for cell in (
                    m.name,
                    f"{m.score:.2f}{unit}",
                    m.artifact or "-",
                    f"{format_bytes(m.artifact_bytes)} ({result.baseline.artifact_bytes / m.artifact_bytes:.1f}x)",
                    f"{format_bytes(m.storage_bytes)} ({result.baseline.artifact_bytes / m.storage_bytes:.1f}x)" if m.storage_bytes else "-",
                    f"{m.params:,}",
                    f"{m.nonzero_params:,}",
                    f"{m.macs:,}",
                    f"{lat.get(1, float('nan')) * 1000:.1f} us",
                    f"{lat.get(256, float('nan')):.3f} ms",
                    f"{m.seconds:.1f} s",
                )
            )
            + "</tr>"
        )
    summary = document["summary"]
    speed = summary["speedup"].get("batch_256")
    headline = (
        f"{metric.name}: {result.baseline.score:.2f}{unit} → {result.final.score:.2f}{unit} "
        f"({summary['score_change']:+.2f}); file {format_bytes(result.baseline.artifact_bytes)} → "
        f"{format_bytes(result.final.artifact_bytes)} ({summary['size_ratio']:.1f}x smaller)"
        + (f"; {speed:.2f}x faster at batch 256" if speed else "")
    )
    figures = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(Path(path).read_bytes()).decode()}"><figcaption>{html.escape(name)}</figcaption></figure>'
        for name, path in images.items()
    )
    env = document["environment"]
    env_text = ", ".join(f"{k} {v}" for k, v in env.items() if v)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgecompress report: {html.escape(result.task.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, td:nth-child(3) {{ text-align: left; }}
img {{ max-width: 100%; }} figure {{ margin: 1em 0; }} .note {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>edgecompress report: {html.escape(result.task.name)}</h1>
<p><strong>{html.escape(headline)}</strong></p>
<table><tr><th>model</th><th>{html.escape(metric.name)}</th><th>artifact</th><th>size on disk</th><th>packed (.ecz)</th><th>params</th>
<th>non-zero</th><th>MACs</th><th>latency b1</th><th>latency b256</th><th>stage time</th></tr>
{''.join(rows)}</table>
<p class="note">Every score is computed by ONNX Runtime on the artifact named in its row, over the whole
evaluation set. Size is the file's size on disk; packed is the size of the .ecz file that `edgecompress unpack`
turns back into that exact ONNX file (zeros stored as a bitmask, entropy-coded). Latency: ONNX Runtime, CPU, one thread, median of interleaved
repeats in this run; compare ratios, absolute times drift on shared machines.</p>
{figures}
<p class="note">{html.escape(env_text)}; seed {result.seed}.</p>
</body></html>
"""
