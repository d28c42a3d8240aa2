"""The one trial store: files first, record last; a record counts only with this run's fingerprint, the JSON
types the caller needs and whole files inside the run. Anything else is "not done", never a crash."""

import json
import os

import pytest

from edgecompress.core.models import DigitsCNN
from edgecompress.core.results import SweepPoint
from edgecompress.orchestration.curves.points import MeasuredPoint, PointStore
from edgecompress.orchestration.pipeline.checkpoints import load_checkpoint, save_checkpoint
from edgecompress.orchestration.search.fit_trials import CandidateStore, FinishedCandidate, FitTrial
from edgecompress.orchestration.trials import store as store_module
from edgecompress.orchestration.trials.store import TrialStore

SCHEMA = {"score": float, "label": str, "count": int, "ok": bool}
FIELDS = {"score": 97.5, "label": "int8", "count": 3, "ok": True}


@pytest.fixture
def saved(tmp_path):
    store = TrialStore(tmp_path, "trials/{key}.json")
    store.save("a", "fp", FIELDS, files={"trials/a.onnx": b"onnx bytes", "trials/a.ecz": b"ecz"})
    return store


def _edit(store: TrialStore, key: str, change) -> None:
    path = store.record_path(key)
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def test_a_saved_record_is_loaded_with_its_fields_and_the_sizes_of_its_files(saved, tmp_path):
    assert saved.load("a", "fp", SCHEMA, needs=["trials/a.onnx"]) == FIELDS
    record = json.loads((tmp_path / "trials" / "a.json").read_text())
    assert record["fingerprint"] == "fp" and record["file_bytes"] == {"trials/a.onnx": 10, "trials/a.ecz": 3}


def test_files_are_written_before_the_record(tmp_path, monkeypatch):
    order, real = [], store_module.atomic_write_bytes
    monkeypatch.setattr(store_module, "atomic_write_bytes", lambda path, data: order.append(path.name) or real(path, data))
    real_text = store_module.atomic_write_text
    monkeypatch.setattr(store_module, "atomic_write_text", lambda path, text: order.append(path.name) or real_text(path, text))
    TrialStore(tmp_path).save("k", "fp", {}, files={"k.onnx": b"1", "k.ecz": b"2"})
    assert order == ["k.onnx", "k.ecz", "k.json"]


@pytest.mark.parametrize("change", [
    lambda r: r.update(fingerprint="another run's"),  # other settings
    lambda r: r.pop("fingerprint"),
    lambda r: r.update(score="97.5"),  # a number as a string
    lambda r: r.update(count=True),  # a bool is not an int
    lambda r: r.update(count=3.5),
    lambda r: r.update(ok=1),
    lambda r: r.update(label=None),
    lambda r: r.pop("label"),
    lambda r: r.update(file_bytes=["trials/a.onnx"]),
    lambda r: r.update(file_bytes={"trials/a.onnx": "10", "trials/a.ecz": 3}),
    lambda r: r.update(file_bytes={"trials/a.onnx": 11, "trials/a.ecz": 3}),  # a file that changed size
    lambda r: r.update(file_bytes={"../outside.onnx": 10}),
    lambda r: r.update(file_bytes={"trials/a.ecz": 3}),  # no longer names a file the caller needs
    lambda r: r.update(file_bytes={"trials/missing.onnx": 0, **r["file_bytes"]}),
])
def test_a_forged_or_hand_edited_record_counts_as_not_done(saved, tmp_path, change):
    (tmp_path / "outside.onnx").write_bytes(b"onnx bytes")
    _edit(saved, "a", change)
    assert saved.load("a", "fp", SCHEMA, needs=["trials/a.onnx"]) is None


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", '"text"', "[" * 100_000, '{"fingerprint": "fp"'])
def test_a_damaged_record_counts_as_not_done(saved, text):
    saved.record_path("a").write_text(text)
    assert saved.load("a", "fp", SCHEMA) is None


def test_a_record_over_the_text_limit_or_not_a_regular_file_is_not_read(saved, monkeypatch):
    monkeypatch.setenv("EDGECOMPRESS_MAX_TEXT_BYTES", "16")
    assert saved.load("a", "fp", SCHEMA) is None
    monkeypatch.delenv("EDGECOMPRESS_MAX_TEXT_BYTES")
    path = saved.record_path("a")
    path.unlink()
    os.mkfifo(path)  # a reader of a FIFO would block forever
    assert saved.load("a", "fp", SCHEMA) is None


def test_a_missing_optional_field_is_fine_but_a_wrong_type_is_not(tmp_path):
    store = TrialStore(tmp_path)
    store.save("k", "fp", {"name": "prune"})
    assert store.load("k", "fp", {}, optional={"name": str, "score": float}) == {"name": "prune"}
    assert store.load("k", "fp", {}, optional={"name": int}) is None


def test_a_hand_edited_sweep_point_is_measured_again(tmp_path):
    points = PointStore(tmp_path, "sweep-fp")
    point = SweepPoint("unstructured", 0.5, True, 97.0, 100, 50, 1000, 400)
    points.save(MeasuredPoint(point, b"o" * 1000, b"e" * 400))
    assert points.load(point.key) == point
    _edit(points.store, point.key, lambda r: r.update(score="97"))
    assert points.load(point.key) is None
    points.save(MeasuredPoint(point, b"o" * 1000, b"e" * 400))
    _edit(points.store, point.key, lambda r: r.update(method="channel"))  # a record copied under another key
    assert points.load(point.key) is None


def test_a_hand_edited_fit_candidate_is_run_again(tmp_path):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("final.onnx")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"onnx"))
    candidates = CandidateStore(tmp_path, "fit-fp")
    trial = FitTrial("candidates/01", "int8", ())
    finished = FinishedCandidate("candidates/01", "int8", 1000, 97.0, 0.5, 0.2, 0.4, False, buffer.getvalue())
    candidates.save(trial, finished)
    assert (tmp_path / "candidates" / "01" / "final.onnx").read_bytes() == b"onnx"
    assert candidates.load(trial) == FinishedCandidate(**finished.record())
    _edit(candidates.store, "candidates/01", lambda r: r.update(size_bytes=[1000]))
    assert candidates.load(trial) is None
    candidates.save(trial, finished)
    (tmp_path / "candidates" / "01" / "final.onnx").write_bytes(b"swapped!")
    assert candidates.load(trial) is None


def test_a_hand_edited_stage_checkpoint_is_computed_again(tmp_path):
    save_checkpoint(tmp_path, "01-prune", "fp", {"artifact": None, "score": 90.0, "params": 10}, DigitsCNN())
    assert load_checkpoint(tmp_path, "01-prune", "fp", DigitsCNN())[0]["score"] == 90.0
    for change in ({"score": "90"}, {"params": 10.5}, {"has_torch": "yes"}, {"artifact": 7}, {"config": []}):
        _edit(TrialStore(tmp_path, "checkpoints/{key}.json"), "01-prune", lambda r: r.update(change))
        assert load_checkpoint(tmp_path, "01-prune", "fp", DigitsCNN()) is None, change
        save_checkpoint(tmp_path, "01-prune", "fp", {"artifact": None, "score": 90.0, "params": 10}, DigitsCNN())
