"""`python -m benchmarks`: run every benchmark and rewrite BENCHMARKS.md (atomically).

`python -m benchmarks --only minilm demo_pipeline`: rerun those sections and replace only them in
BENCHMARKS.md (the other sections keep their numbers and the machine line gains a note of what was rerun).

`python -m benchmarks --quick`: re-measure only the README's headline claims (about 3 minutes) and exit 1
if one no longer holds; BENCHMARKS.md is left alone.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
from pathlib import Path

from benchmarks import alternatives, block_sparse, curves, demo_pipeline, fuzz, lm, minilm, pruning, quantization, targets, untrusted_files, user_model
from edgecompress.runtime.environment import environment
from edgecompress.storage.files import atomic_write_text

OUTPUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def machine_section() -> str:
    env = environment()
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu_flags = next(line for line in info if line.startswith("flags")).split(":", 1)[1].split()
        flags = ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f in cpu_flags)
    except (OSError, StopIteration):
        pass
    versions = ", ".join(f"{k} {v}" for k, v in env.items() if k not in ("cpu", "machine", "python") and v)
    return (
        f"Machine: {env['cpu']} ({platform.machine()}, {os.cpu_count()} cores; {flags or 'no AVX flags read'}; "
        f"CPU class {env['cpu_class']}: every number below was measured on it unless a table says otherwise); "
        f"Python {env['python']}; {versions}.\n"
        f"Run on {datetime.date.today().isoformat()} with `make bench` (`python -m benchmarks`)."
    )


SECTIONS = {
    "demo_pipeline": demo_pipeline,
    "alternatives": alternatives,
    "pruning": pruning,
    "curves": curves,
    "quantization": quantization,
    "block_sparse": block_sparse,
    "minilm": minilm,
    "fuzz": fuzz,  # fuzzing the command line; `make fuzz` runs this and "untrusted"
    "untrusted": untrusted_files,  # untrusted files: property tests at 6x and crafted .ecz files
    "targets": targets,
    "user_model": user_model,  # issue 18: smaller dense models and pruning from scratch for a model defined outside
    "lm": lm,  # issue 20: the built-in decoder, edgecompress's routes against ORT's quantizer and PyTorch's pruning
}


def compose(fresh: dict[str, str], previous: str | None = None) -> str:
    """BENCHMARKS.md from freshly run sections; with `previous`, the sections not rerun are kept from it.

    Sections are matched by their order in SECTIONS: a previous file's k-th "## " block is section k.
    """
    if previous is None:
        return "# Benchmarks\n\n" + machine_section() + "\n\n" + "\n\n".join(fresh[n] for n in SECTIONS) + "\n"
    head, *blocks = previous.split("\n## ")
    if len(blocks) > len(SECTIONS):
        raise SystemExit("BENCHMARKS.md has more sections than the benchmarks; run without --only")
    old = dict(zip(SECTIONS, ("## " + b.rstrip("\n") for b in blocks)))
    missing = [n for n in SECTIONS if n not in fresh and n not in old]
    if missing:
        raise SystemExit(f"BENCHMARKS.md has no section for {', '.join(missing)}; run without --only")
    head_lines = [line for line in head.rstrip("\n").splitlines() if not line.startswith("Rerun on ")]
    notes = _rerun_notes(head, fresh)
    body = "\n\n".join(fresh.get(n) or old[n] for n in SECTIONS)
    return "\n".join(head_lines + notes) + "\n\n" + body + "\n"


def _rerun_notes(head: str, fresh: dict[str, str]) -> list[str]:
    """One "Rerun on DATE on CPU CLASS: sections" line per date and class, a section listed only under its
    latest run: int8 results and timings differ between CPU classes, so each number says where it was measured."""
    reruns: dict[tuple[str, str], list[str]] = {}
    for line in head.splitlines():
        match = re.match(r"Rerun on (\S+?)(?: on (\S+))?: ([a-z_, ]+) \(", line)
        if match:
            reruns[(match.group(1), match.group(2) or "")] = [n.strip() for n in match.group(3).split(",")]
    now = (datetime.date.today().isoformat(), environment()["cpu_class"])
    reruns = {when: [n for n in names if n not in fresh] for when, names in reruns.items()}
    reruns[now] = reruns.get(now, []) + list(fresh)
    return [
        f"Rerun on {date}{f' on {cpu_class}' if cpu_class else ''}: {', '.join(n for n in SECTIONS if n in names)} "
        "(`python -m benchmarks --only ...`)."
        for (date, cpu_class), names in sorted(reruns.items()) if names
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="check the README's headline claims only (CI)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="rerun these sections, keep the others")
    args = parser.parse_args(argv)
    if args.quick:
        from benchmarks import quick

        table, ok = quick.report(quick.run())
        print(table)
        print("every README claim holds" if ok else "a README claim does not hold (see the table)")
        return 0 if ok else 1
    names = args.only or list(SECTIONS)
    fresh = {name: SECTIONS[name].markdown(SECTIONS[name].run()) for name in names}
    atomic_write_text(OUTPUT, compose(fresh, OUTPUT.read_text(encoding="utf-8") if args.only and OUTPUT.exists() else None))
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
