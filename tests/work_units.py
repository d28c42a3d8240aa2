"""How `make test` splits the suite between two pytest-xdist workers (`pytest -n 2 --dist loadgroup`).

A work unit runs whole on one worker. A test is a unit of its own unless it shares a costly fixture:
- every test of the demo run (`demo_run`, about a minute of training) is one unit, whatever its file;
- the tests of a file that use a module-scoped fixture are one unit, so that fixture is computed once;
- a test marked `xdist_group(name)` joins that group (xdist's own meaning of the mark).
The other session fixtures (a few seconds each) are computed at most once per worker.

xdist 3.8's own `loadgroup` sends the group to the controller inside the test's node id, which pytest 9.2 no
longer lets it change (pytest-xdist issue #1386): the groups are silently ignored and `demo_run` is computed
twice. Here each worker writes the units it collected to a file the controller's scheduler reads instead.

Units start in the order of `FIRST` (the longest, measured on 2 cores), then in file order: a long unit
started last would keep one worker busy while the other has nothing left to do.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

SHARED_FIXTURES = ("demo_run",)  # session fixtures worth one worker: every test using one is a single unit
# the longest units, longest first (a serial run's --durations on the 2-core x86-avx2 machine, 2026-12)
FIRST = (
    "demo_run",  # the demo (40 + 24 + 16 epochs), its two kill -9 / --resume runs, the emulated CPUs
    "tests/encoders/test_compress_int8.py",  # the int8 route on a tiny BERT (module fixture), run twice
    "tests/test_readme.py::test_readme_python_example_runs",  # 40 + 24 epochs
    "tests/robustness/test_output_dirs.py",
    "tests/robustness/test_determinism.py::test_two_runs_are_identical",
    "tests/encoders/test_compress_lowbit_structured.py::test_distillation_brings_a_pruned_encoder_closer_to_the_original",
    "tests/robustness/test_malformed_input.py",
    "tests/encoders/test_compress_lowbit_structured.py::test_structured_route_and_head_removal_shrink_the_layers",
    "tests/test_fit.py",
)
_KEY = "edgecompress_work_units"  # in workerinput: the file the workers write their units to
_PATH = pytest.StashKey[str]()


def unit_of(item: pytest.Item) -> str:
    """The work unit of a test: an xdist_group name, a shared fixture, its file, or the test itself."""
    groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")})
    if groups:
        return "_".join(groups)
    for name in SHARED_FIXTURES:
        if name in item.fixturenames:
            return name
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", None)
    if definitions is None:  # pytest changed its internals: keep every file whole, as --dist loadfile does
        return item.nodeid.split("::")[0]
    if any(d.scope in ("module", "class", "package") for defs in definitions.values() for d in defs):
        return item.nodeid.split("::")[0]
    return item.nodeid


def assign_units(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker: order `items` by unit (FIRST first) and write {node id: unit} for the controller."""
    path = getattr(config, "workerinput", {}).get(_KEY)
    if path is None:
        return
    units = {item.nodeid: unit_of(item) for item in items}
    rank = {unit: i for i, unit in enumerate(FIRST)}
    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(units[item.nodeid], len(first_seen))
    items.sort(key=lambda item: (rank.get(units[item.nodeid], len(rank)), first_seen[units[item.nodeid]]))
    partial = f"{path}.{config.workerinput['workerid']}"  # both workers write the same; each atomically
    Path(partial).write_text(json.dumps(units))
    os.replace(partial, path)


def _scheduling_class():
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        """xdist's scope scheduling, with the scope of a test read from the units the workers wrote."""

        def __init__(self, config, log, path: str):
            super().__init__(config, log)
            self._path, self._units = path, None

        def _split_scope(self, nodeid: str) -> str:
            if self._units is None:  # called once every worker has finished collecting (and written the file)
                self._units = json.loads(Path(self._path).read_text())
            return self._units.get(nodeid, nodeid)

    return WorkUnitScheduling


def _units_path(config: pytest.Config) -> str:
    if _PATH not in config.stash:
        config.stash[_PATH] = os.path.join(tempfile.mkdtemp(prefix="edgecompress-work-units-"), "units.json")
    return config.stash[_PATH]


# the hooks, imported by tests/conftest.py

def pytest_unconfigure(config: pytest.Config) -> None:
    if _PATH in config.stash:
        shutil.rmtree(os.path.dirname(config.stash[_PATH]), ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    if node.config.getvalue("dist") == "loadgroup":
        node.workerinput[_KEY] = _units_path(node.config)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    config.option.loadscopereorder = False  # keep the order the workers gave (FIRST first)
    return _scheduling_class()(config, log, _units_path(config))
