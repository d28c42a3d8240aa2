"""The README's Python example runs as written and its claims about the API hold."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 14
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    baseline, final, size = capsys.readouterr().out.split()
    assert float(baseline) >= 98.0 and float(final) >= float(baseline) - 1.0
    assert int(size) == (tmp_path / "runs/my-digits/final.onnx").stat().st_size


def test_readme_set_up_is_the_two_make_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (README.parent / ".ci" / "run").read_text()


def test_readme_demo_size_claims_match_a_real_run(demo_run):
    """The README's byte counts and ratios for the demo hold for the committed code at seed 0.

    The ONNX file's size follows from the architecture alone, so it is exact; the packed size depends on the
    trained weights, which differ in the last float bits between CPUs, so it may differ by 1%.
    """
    _, metrics = demo_run
    text = README.read_text()
    base, final = metrics["baseline"]["artifact_bytes"], metrics["final"]["artifact_bytes"]
    assert f"({base:,} -> {final:,} bytes)" in text
    assert f"**{base / final:.1f}x smaller**" in text
    ratio, claimed = re.search(r"packed, it is \*\*([\d.]+)x smaller\*\* \(([\d,]+) bytes\)", text).groups()
    storage = metrics["final"]["storage_bytes"]
    assert abs(storage - int(claimed.replace(",", ""))) <= 0.01 * storage
    assert abs(base / storage - float(ratio)) <= 0.01 * float(ratio)
