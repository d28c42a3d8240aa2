"""A preset route's distillation budget changed from the command line (`--distill-seconds` of `encoder` and `llm`)."""

from __future__ import annotations

from typing import Mapping, Sequence

from edgecompress.core.errors import UserError
from edgecompress.techniques.config import StageConfig
from edgecompress.techniques.distill.config import Distill

DISTILL_LIMIT = Distill.model_fields["seconds"].metadata[-1].le


def with_distill_seconds(routes: Mapping[str, Sequence[StageConfig]], route: str, seconds: float) -> list[StageConfig]:
    """`routes[route]` with every distill stage's time budget set to `seconds` (0: the distill stages removed).

    >>> routes = {"int8": (), "int4": (Distill(seconds=240),)}
    >>> with_distill_seconds(routes, "int4", 60)[0].seconds, with_distill_seconds(routes, "int4", 0)
    (60.0, [])
    """
    stages = list(routes[route])
    if not any(isinstance(s, Distill) for s in stages):
        distilled = [name for name, found in routes.items() if any(isinstance(s, Distill) for s in found)]
        raise UserError(f"--distill-seconds: route {route} does not distill; use {' or '.join(distilled)}")
    if seconds == 0:  # no distillation at all
        return [s for s in stages if not isinstance(s, Distill)]
    if not 0 < seconds <= DISTILL_LIMIT:
        raise UserError(f"--distill-seconds: must be a number of seconds from 0 to {DISTILL_LIMIT:,} (a week), got {seconds}")
    return [Distill.model_validate({**s.model_dump(), "seconds": seconds}) if isinstance(s, Distill) else s for s in stages]
