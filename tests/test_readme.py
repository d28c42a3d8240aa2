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


def _make_install_commands(*overrides: str) -> list[str]:
    """The commands `make install` would run on a fresh clone (make -n: printed, nothing run)."""
    import subprocess

    root = README.parent
    done = subprocess.run(["make", "-n", "-B", "install", "VENV=/nonexistent-venv", *overrides], cwd=root,
                          capture_output=True, text=True, check=True)
    return [line for line in done.stdout.splitlines() if " pip install" in line]


def test_make_install_takes_cpu_torch_from_pytorchs_index_before_the_package():
    index = "https://download.pytorch.org/whl/cpu"
    commands = _make_install_commands()
    torch_line = next(i for i, c in enumerate(commands) if c.endswith(f"-c constraints.txt torch --index-url {index}"))
    package_line = next(i for i, c in enumerate(commands) if c.endswith('-c constraints.txt -e ".[dev]"'))
    assert torch_line < package_line  # the package then finds torch installed and keeps the CPU build
    assert not [c for c in _make_install_commands("TORCH_INDEX=") if "--index-url" in c]  # offline: pip's own config
    text = README.read_text()
    set_up = text[text.index("## Set-up"):text.index("## The demo")]
    assert f"pip install torch --index-url {index}" in set_up and "pip install ." in set_up
    assert set_up.index(f"pip install torch --index-url {index}") < set_up.index("pip install .")
