"""Run an ONNX model in ONNX Runtime on saved inputs and save its outputs: the part that runs on an emulated CPU.

Standalone on purpose: it imports only the standard library, numpy and onnxruntime, so the same file runs
under `qemu-x86_64 -cpu Haswell` with our own venv and under `qemu-aarch64` with a minimal arm64 Python that
has nothing but numpy and onnxruntime. Everything else (the task metric, the exactness reference) is computed
by the host from the arrays this writes.

    python ort_worker.py MODEL INPUTS.npz OUTPUTS.npz [--threads N]

INPUTS.npz holds one array per batch and input, keyed `<batch>/<input name>`; OUTPUTS.npz gets every graph
output of every batch, keyed `<batch>/<output name>`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile


def run(model: str, inputs: str, outputs: str, threads: int = 1) -> None:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    with np.load(inputs, allow_pickle=False) as saved:
        batches: dict[str, dict] = {}
        for key in saved.files:
            batch, name = key.split("/", 1)
            batches.setdefault(batch, {})[name] = saved[key]
    results = {}
    for batch in sorted(batches, key=int):
        for name, value in zip(names, session.run(names, batches[batch])):
            results[f"{batch}/{name}"] = value
    # atomic: the host must never read a half-written file
    handle, partial = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(outputs)), suffix=".npz")
    os.close(handle)
    np.savez(partial, **results)
    os.replace(partial, outputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("outputs")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    run(args.model, args.inputs, args.outputs, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
