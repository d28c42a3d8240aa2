"""A small real run for the report tests: its recipe is fixed here, so the expected per-layer paths do not
move when the demo's recipe changes."""

from __future__ import annotations

import pytest

import edgecompress as ec
from edgecompress.core.models import DigitsCNN
from edgecompress.core.seeding import seed_everything
from edgecompress.orchestration.pipeline.run import compress


@pytest.fixture(scope="session")
def pruned_run(small_digits_task, tmp_path_factory):
    """An untrained digits CNN, half its channels removed, static int8: about 10 s, every report section."""
    seed_everything(0)
    out = tmp_path_factory.mktemp("report") / "run"
    return compress(DigitsCNN().eval(), small_digits_task, [ec.Prune(pattern="channel", amount=0.5), ec.Quantize()], out)
