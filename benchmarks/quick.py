"""`python -m benchmarks --quick`: re-measure the README's headline claims in about 3 minutes and check them.

CI runs this after the tests, on whatever machine it gets: a claim that no longer holds (within the
tolerance stated next to it) fails the run. It writes nothing to BENCHMARKS.md; the full run does that.

Each claim quotes the README text it checks, so a claim edited in the README without editing it here (or
the other way round) fails too. Tolerances: sizes are deterministic for a seed (a few percent for other
CPUs' float rounding); accuracy one test error (0.28 points) beyond the claim; latency ratios are ratios
taken in one run, given 30% slack for a noisy shared machine.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
ONE_TEST_ERROR = 100 / 360  # points of accuracy on the 360-image digits test split

# what the README says, verbatim; `python -m benchmarks --quick` measures each
CLAIMS = {
    "demo_size": "**13.7x smaller**",
    "demo_storage": "**43.0x smaller** (4,984 bytes)",
    "demo_drop": "at most 0.28 points lower",
    "demo_latency": "(0.33x the latency, one thread)",
    "demo_exact": "computes the same outputs, bit for bit, on every CPU class",
    "minilm_size": "int8: 23.8 MB",
    "minilm_cosine": "mean cosine 0.998",
    "minilm_overlap": "overlap@10 0.936",
    "minilm_latency": "as fast at batch 32 as ONNX Runtime's own per-channel int8 of the same model, within 15%",
    "minilm_exact": "exact on every CPU class",
}


@dataclass(frozen=True)
class Check:
    claim: str  # the README text this checks; it must appear there verbatim
    measured: float
    limit: float
    at_most: bool  # True: measured <= limit holds the claim; False: measured >= limit
    note: str = ""  # how it was measured, shown beside the claim

    @property
    def holds(self) -> bool:
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit


def demo_checks() -> list[Check]:
    """The demo at seed 0: ONNX and packed size ratios, worst accuracy drop, batch-256 latency ratio."""
    from edgecompress.orchestration.demo import run_demo
    from edgecompress.orchestration.verify import verify

    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stderr(io.StringIO()):
        result = run_demo(out, seed=0)
        # on every class this machine reaches (the rest by emulation): outputs identical and integer nodes exact
        classes = verify(out, "portable").results
    differs = max(c.max_output_difference + c.exactness.off_fraction for c in classes)
    base, final = result.baseline, result.final
    ratio = base.artifact_bytes / final.artifact_bytes
    return [
        Check(CLAIMS["demo_size"], ratio, 13.7 * 0.97, at_most=False),
        Check(CLAIMS["demo_storage"], base.artifact_bytes / final.storage_bytes, 43.0 * 0.97, at_most=False),
        Check(CLAIMS["demo_drop"], base.score - final.score, 0.28 + ONE_TEST_ERROR, at_most=True),
        Check(CLAIMS["demo_latency"], final.latency[256].median_ms / base.latency[256].median_ms, 0.33 * 1.3, at_most=True),
        Check(CLAIMS["demo_exact"], differs, 0.0, at_most=True, note=", ".join(c.exactness.cpu for c in classes)),
    ]


def minilm_checks() -> list[Check]:
    """all-MiniLM-L6-v2's int8 route against ORT's per-channel dynamic int8 of a plain export, timed together."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from benchmarks.minilm import plain_export
    from edgecompress.families.encoder import load_encoder, route_stages, sentence_encoder_task
    from edgecompress.families.encoder.batches import token_batches
    from edgecompress.families.encoder.corpus import docstring_corpus
    from edgecompress.orchestration.pipeline.run import compress
    from edgecompress.orchestration.verify import verify
    from edgecompress.runtime.latency import measure_feed_latencies

    loaded = load_encoder()
    with tempfile.TemporaryDirectory() as work, contextlib.redirect_stderr(io.StringIO()):
        work = Path(work)
        result = compress(loaded.model, sentence_encoder_task(loaded), route_stages("int8"), work / "ours")
        plain = plain_export(loaded.model, work / "plain.onnx")
        theirs = work / "ort-int8.onnx"
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_dynamic(str(plain), str(theirs), per_channel=True, weight_type=QuantType.QInt8,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        feed = token_batches(loaded.tokenizer, docstring_corpus().eval[:32], 32, loaded.max_length)[0]
        ours_ms, theirs_ms = (lat[32].median_ms for lat in measure_feed_latencies([work / "ours/final.onnx", theirs], {32: feed}, rounds=9))
        exactness = [r.exactness for r in verify(work / "ours", "portable", limit=32).results]
    fid = result.final.details["fidelity"]
    return [
        Check(CLAIMS["minilm_size"], result.final.artifact_bytes / 1e6, 24.0, at_most=True),
        Check(CLAIMS["minilm_cosine"], fid["cosine_mean"], 0.995, at_most=False),
        Check(CLAIMS["minilm_overlap"], fid["overlap_at_10"], 0.93, at_most=False),
        Check(CLAIMS["minilm_latency"], ours_ms / theirs_ms, 1.15, at_most=True),
        Check(CLAIMS["minilm_exact"], max(e.off_fraction for e in exactness), 0.001, at_most=True, note=", ".join(e.cpu for e in exactness)),
    ]


def missing_from_readme(checks: list[Check], text: str | None = None) -> list[str]:
    text = README.read_text() if text is None else text
    return [c.claim for c in checks if c.claim not in text]


def run() -> list[Check]:
    return demo_checks() + minilm_checks()


def report(checks: list[Check]) -> tuple[str, bool]:
    """A table of the checks, and whether every claim holds and is still in the README."""
    missing = set(missing_from_readme(checks))
    from edgecompress.runtime.targets import host_cpu

    lines = [f"Measured on a {host_cpu().describe()} CPU.", "", "| README claim | measured | limit | holds |", "|---|---|---|---|"]
    for c in checks:
        verdict = "yes" if c.holds else "NO"
        if c.claim in missing:
            verdict = "NOT IN README"
        lines.append(f"| {c.claim}{f' ({c.note})' if c.note else ''} | {c.measured:.4g} | {'<=' if c.at_most else '>='} {c.limit:.4g} | {verdict} |")
    return "\n".join(lines), all(c.holds for c in checks) and not missing
