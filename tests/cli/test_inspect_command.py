import json

from edgecompress.cli import main


def test_inspect_prints_table_and_writes_charts_and_json(capsys, tmp_path):
    """Issue 19: at 20KB the demo CNN was said not to fit, while channels -50% then int8 (the demo's route) makes
    a 15.6 KB file: the advice combines them, and points to the fit command that measures the accuracy."""
    out = tmp_path / "insp"
    assert main(["inspect", "digits-cnn", "--target-size", "20KB", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "53,002" in stdout and "339,328" in stdout
    assert "size check: state_dict tensors 212,008 B" in stdout
    assert "fc1: 131.6 KB -> 13.2 KB" in stdout and "int8 alone: about 53.9 KB, which does not fit" in stdout
    assert "\n  in float32 it does not fit even so: every layer would need to keep less than 10%\n" in stdout
    assert "\nchannels -50% then int8: about 14.2 KB, which fits\n" in stdout
    assert stdout.count("does not fit") == 2  # float32 and int8 alone, never the model
    assert ": edgecompress fit --max-size 20KB --size-of onnx\n" in stdout
    doc = json.loads((out / "layers.json").read_text())
    assert doc["total"] == {"params": 53_002, "bytes": 212_008, "macs": 339_328, "sparsity": 0.0}
    assert [c["layer"] for c in doc["target"]["cuts"]] == ["fc1", "conv2", "fc2", "conv1"]
    assert doc["target"]["channels_then_int8"] == [{"channels_removed": 0.5, "int8_bytes": 14_194, "fits": True, "problem": None}]
    assert doc["target"]["sure"] and doc["target"]["fit_command"] == "edgecompress fit --max-size 20KB --size-of onnx"
    assert (out / "layers.png").read_bytes()[:4] == b"\x89PNG"


def test_inspect_users_model_with_weights_reports_the_real_file(capsys, tmp_path):
    import torch

    from edgecompress.core.models import DigitsMLP

    weights = tmp_path / "mlp.pt"
    torch.save(DigitsMLP().state_dict(), weights)
    assert main(["inspect", "digits-mlp", "--weights", str(weights), "--out", str(tmp_path / "o")]) == 0
    stdout = capsys.readouterr().out
    assert "50,610" in stdout
    assert f"{weights.stat().st_size:,} B" in stdout


def test_pack_and_unpack_commands_round_trip(capsys, tmp_path):
    import torch

    from edgecompress.core.models import DigitsCNN
    from edgecompress.onnx import export_onnx

    model_path = export_onnx(DigitsCNN(), torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx")
    assert main(["pack", str(model_path), "--out", str(tmp_path / "m.ecz")]) == 0
    assert main(["unpack", str(tmp_path / "m.ecz"), "--out", str(tmp_path / "back.onnx")]) == 0
    assert (tmp_path / "back.onnx").read_bytes() == model_path.read_bytes()
    (tmp_path / "bad.ecz").write_bytes(b"not a packed model at all")
    assert main(["unpack", str(tmp_path / "bad.ecz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
