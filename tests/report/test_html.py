"""report.html is rendered by an autoescaping template: whatever a run's names hold is shown as text."""

from __future__ import annotations

import dataclasses

from edgecompress.reporting.report.html import render_report
from edgecompress.reporting.report.layer_paths import LayerPath
from edgecompress.reporting.report.metrics import metrics_document

HOSTILE = "<script>alert('x')</script> & \"q\""


def test_names_from_a_run_are_escaped_everywhere_they_appear(pruned_run):
    result = dataclasses.replace(pruned_run, task=dataclasses.replace(pruned_run.task, name=HOSTILE))
    path = LayerPath(HOSTILE, "Conv2d", (4, 1, 3, 3), (2, 1, 3, 3), 36, 18, "int8 per channel", "channels 4 -> 2 out")
    page = render_report(result, metrics_document(pruned_run), {}, [path])
    assert "<script>" not in page
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;q&#34;"
    assert page.count(escaped) == 3  # the title, the heading and the layer's row
    assert f"<h1>edgecompress report: DigitsCNN on {escaped}</h1>" in page
    assert f'<tr><td class="text">{escaped}</td><td class="text">Conv2d</td><td>4x1x3x3</td><td>2x1x3x3</td><td>18 of 36</td>' in page
    assert "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\"" in page  # the policy itself is not escaped
