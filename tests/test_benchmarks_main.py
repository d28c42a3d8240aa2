"""`python -m benchmarks`: rerunning some sections keeps the others; the README claims the quick mode checks exist."""

import pytest

from benchmarks import __main__ as bench
from benchmarks import quick


def _fake(names, tag):
    return {n: f"## {n} title\n\n{tag} numbers of {n}" for n in names}


def test_only_replaces_the_sections_that_were_rerun(monkeypatch):
    monkeypatch.setattr(bench, "machine_section", lambda: "Machine: test box.\nRun on 2026-01-01 with `make bench`.")
    full = bench.compose(_fake(bench.SECTIONS, "old"))
    assert full.startswith("# Benchmarks\n\nMachine: test box.")
    partial = bench.compose(_fake(["minilm", "pruning"], "new"), previous=full)
    for name in bench.SECTIONS:
        tag = "new" if name in ("minilm", "pruning") else "old"
        assert f"{tag} numbers of {name}" in partial
    assert partial.count("## ") == len(bench.SECTIONS)
    assert "Rerun on " in partial and "pruning, minilm (" in partial
    # a rerun the same day joins that day's note; a section rerun later moves to the later date's note
    again = bench.compose(_fake(["curves"], "newer"), previous=partial)
    assert again.count("Rerun on ") == 1 and ": pruning, curves, minilm (" in again
    assert "newer numbers of curves" in again and "new numbers of minilm" in again
    today, here = bench.datetime.date.today().isoformat(), bench.environment()["cpu_class"]
    assert f"Rerun on {today} on {here}: pruning, curves, minilm (" in again  # each rerun says its CPU class
    earlier = again.replace(f"Rerun on {today} on {here}", "Rerun on 2000-01-01 on x86-other")
    later = bench.compose(_fake(["minilm"], "newest"), previous=earlier)
    assert "Rerun on 2000-01-01 on x86-other: pruning, curves (" in later and f"Rerun on {today} on {here}: minilm (" in later
    undated_class = later.replace("Rerun on 2000-01-01 on x86-other:", "Rerun on 2000-01-01:")  # a note of before
    assert "Rerun on 2000-01-01: pruning, curves (" in bench.compose(_fake(["minilm"], "x"), previous=undated_class)


def test_only_refuses_when_a_kept_section_does_not_exist(monkeypatch):
    monkeypatch.setattr(bench, "machine_section", lambda: "Machine: test box.")
    names = list(bench.SECTIONS)
    short = "# Benchmarks\n\nMachine: test box.\n\n" + "\n\n".join(_fake(names[:2], "old").values()) + "\n"
    with pytest.raises(SystemExit, match="no section for"):
        bench.compose(_fake(["minilm"], "new"), previous=short)


def test_quick_mode_claims_are_quoted_from_the_readme():
    assert quick.missing_from_readme([quick.Check(c, 0, 0, True) for c in quick.CLAIMS.values()]) == []


def test_a_claim_that_no_longer_holds_fails_the_quick_report():
    holds = quick.Check(quick.CLAIMS["demo_size"], measured=12.0, limit=11.4, at_most=False)
    broken = quick.Check(quick.CLAIMS["demo_size"], measured=9.0, limit=11.4, at_most=False)
    assert quick.report([holds])[1] is True
    table, ok = quick.report([holds, broken])
    assert ok is False and "| NO |" in table
    table, ok = quick.report([quick.Check("a claim the README never made", 1, 2, True)])
    assert ok is False and "NOT IN README" in table


def test_pareto_front_keeps_only_points_nothing_beats_on_size_and_metric():
    from benchmarks.pareto import pareto_front

    points = [("big", 100.0, 99.0), ("small-bad", 10.0, 90.0), ("dominated", 50.0, 89.0), ("mid", 40.0, 95.0), ("tie-larger", 45.0, 95.0)]
    assert [p[0] for p in pareto_front(points)] == ["small-bad", "mid", "big"]
