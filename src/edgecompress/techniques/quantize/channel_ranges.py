"""Per-channel activation ranges of an ONNX model's tensors, measured on calibration inputs.

ORT's calibrators return one range per tensor; outlier handling needs one per channel (last axis), so we
expose the tensors as extra graph outputs and reduce them ourselves, batch by batch (streamed).
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgecompress.core.errors import UserError
from edgecompress.runtime.sessions import make_session


def channel_absmax(model: onnx.ModelProto, tensor_names: list[str], feeds: Iterable[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """max |x| per last-axis channel of each named float tensor, over every batch of `feeds`.

    >>> ranges = channel_absmax(model, ["hidden"], [{"input_ids": ids, "attention_mask": mask}])  # doctest: +SKIP
    """
    ranges: dict[str, np.ndarray] = {}
    for _, values in tensor_values(model, tensor_names, feeds):
        for name, value in values.items():
            batch_max = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            ranges[name] = np.maximum(ranges[name], batch_max) if name in ranges else batch_max
    if not ranges:
        raise UserError("calibration: no calibration batches were given; pass at least one")
    return ranges


def tensor_values(
    model: onnx.ModelProto, tensor_names: list[str], feeds: Iterable[Mapping[str, np.ndarray]]
) -> Iterator[tuple[Mapping[str, np.ndarray], dict[str, np.ndarray]]]:
    """(feed, {name: value}) for each batch: the named float tensors of `model`, exposed as extra outputs.

    >>> for feed, values in tensor_values(model, ["hidden"], feeds): ...  # doctest: +SKIP
    """
    names = list(dict.fromkeys(tensor_names))
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output}
    probe.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names if name not in existing)
    session = make_session(probe.SerializeToString())
    for feed in feeds:
        yield feed, dict(zip(names, session.run(names, dict(feed))))
