"""What someone who can write into an output directory can and cannot make a later run (--resume) do.

A run directory is trusted to hold what this user's runs wrote, but it is read as untrusted input: its
checkpoints never choose code (test_metadata_never_chooses_code.py), never name files outside it, and its
ONNX files pass the same checks as any other. Records are not signed, so a forged one is believed.
"""

from __future__ import annotations

from benchmarks.fuzz import _tiny_onnx
from edgecompress.core.models import DigitsCNN
from edgecompress.delivery import pack
from edgecompress.orchestration.pipeline.checkpoints import load_checkpoint, save_checkpoint


def test_a_link_planted_where_a_run_writes_is_replaced_not_written_through(tmp_path):
    """Every output is written to a temporary file and renamed over the target: a planted link is replaced."""
    victim = tmp_path / "victim.txt"
    victim.write_text("must stay")
    run = tmp_path / "run"
    run.mkdir()
    (run / "final.ecz").symlink_to(victim)
    pack(_tiny_onnx(run / "final.onnx"), run / "final.ecz")
    assert victim.read_text() == "must stay" and not (run / "final.ecz").is_symlink()


def test_a_forged_record_with_the_right_fingerprint_is_resumed(tmp_path):
    """The limit of the model: fingerprints are hashes of the run's inputs, not secrets, so whoever can write
    the directory can make --resume report a number that was never measured (but not run code or read
    outside the directory). Give --resume only directories your own runs wrote."""
    run = tmp_path / "run"
    onnx_file = _tiny_onnx(tmp_path / "m.onnx")
    (run / "stages").mkdir(parents=True)
    (run / "stages" / "01-prune.onnx").write_bytes(onnx_file.read_bytes())
    save_checkpoint(run, "01-prune", "the-fingerprint", {"artifact": "stages/01-prune.onnx", "score": 100.0,
                                                        "artifact_bytes": onnx_file.stat().st_size}, DigitsCNN())
    record, _ = load_checkpoint(run, "01-prune", "the-fingerprint", DigitsCNN())
    assert record["score"] == 100.0
