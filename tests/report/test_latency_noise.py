"""Speedups as intervals, with a noise verdict: the CLI and the report never headline a ratio the repeats
cannot support."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from edgecompress.reporting.latency_noise import speedup
from edgecompress.reporting.report.html import render_report
from edgecompress.reporting.report.metrics import metrics_document
from edgecompress.reporting.summary import latency_note
from edgecompress.runtime.latency import Latency

BASE = Latency(1.0, 0.95, 1.05, 50)
FAST = Latency(0.4, 0.39, 0.41, 50)


def test_a_quiet_speedup_is_the_interval_of_the_quartile_ratios():
    s = speedup(BASE, FAST, 256, load=0.8, cpus=2)
    assert (s.low, s.high) == pytest.approx((0.95 / 0.41, 1.05 / 0.39))
    assert s.median == pytest.approx(2.5) and not s.noisy
    assert s.headline() == "2.32x-2.69x faster at batch 256"


def test_wide_repeats_make_the_latency_noisy_and_the_headline_refuses_one_number():
    spread = Latency(0.4, 0.2, 0.7, 50)  # interquartile range 125% of the median
    s = speedup(BASE, spread, 256, load=0.5, cpus=2)
    assert s.reasons == ("repeats spread over 125% of the median",)
    assert s.interval == "1.36x-5.25x"
    assert "not headlined" in s.headline() and "1.36x-5.25x" in s.headline() and "2.50x" not in s.headline()


def test_a_load_above_the_cpu_count_makes_the_latency_noisy():
    assert speedup(BASE, FAST, 256, load=3.1, cpus=2).reasons == ("load average 3.1 on 2 CPUs",)
    assert speedup(BASE, FAST, 256, load=2.0, cpus=2).reasons == ()
    assert speedup(BASE, FAST, 256, load=None, cpus=2).reasons == ()  # no load average on this OS


def test_an_interval_across_one_is_no_clear_change_and_below_one_is_slower():
    assert speedup(BASE, Latency(1.0, 0.92, 1.08, 50), 1, 0.0, 2).headline() == "no clear speed change at batch 1 (0.88x-1.14x)"
    assert speedup(FAST, BASE, 1, 0.0, 2).headline() == "2.32x-2.69x slower at batch 1"


def test_metrics_json_records_the_interval_the_verdict_and_the_load(pruned_run, monkeypatch):
    monkeypatch.setattr("edgecompress.reporting.report.metrics.machine_load", lambda: (7.5, 2))
    document = metrics_document(pruned_run)
    base, final = pruned_run.baseline.latency[256], pruned_run.final.latency[256]
    assert document["summary"]["speedup_interval"]["batch_256"] == pytest.approx([base.p25_ms / final.p75_ms, base.p75_ms / final.p25_ms])
    assert "load average 7.5 on 2 CPUs" in document["summary"]["latency_noisy"]["batch_256"]
    assert document["summary"]["latency_conditions"] == {"load_average_1min": 7.5, "cpus": 2}


def test_the_report_headline_carries_the_interval_and_withholds_a_noisy_speedup(pruned_run, monkeypatch):
    base, final = pruned_run.baseline.latency[256], pruned_run.final.latency[256]
    interval = f"{base.p25_ms / final.p75_ms:.2f}x-{base.p75_ms / final.p25_ms:.2f}x"
    for load, expected in ((0.0, None), (9.0, "not headlined: latency noisy (")):
        monkeypatch.setattr("edgecompress.reporting.report.metrics.machine_load", lambda load=load: (load, 2))
        page = render_report(pruned_run, metrics_document(pruned_run), {})
        headline = page.split("<p><strong>")[1].split("</strong>")[0]
        assert interval in headline
        if expected:
            assert expected in headline and "load average 9.0 on 2 CPUs" in headline and " faster at batch 256" not in headline


def test_the_cli_summary_says_when_the_latency_is_noisy(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"summary": {"latency_conditions": {"load_average_1min": 4.2, "cpus": 2}}}))
    result = SimpleNamespace(out_dir=tmp_path, baseline=SimpleNamespace(latency={256: BASE}), final=SimpleNamespace(latency={256: FAST}))
    assert latency_note(result) == (
        "latency noisy: load average 4.2 on 2 CPUs. The final model's batch-256 speedup is somewhere in 2.32x-2.69x; "
        "time it again on a quiet machine before quoting one number."
    )
    (tmp_path / "metrics.json").write_text(json.dumps({"summary": {"latency_conditions": {"load_average_1min": 0.5, "cpus": 2}}}))
    assert latency_note(result) is None
