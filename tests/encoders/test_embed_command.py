"""`edgecompress embed`: the shipped artifact embeds sentences from the command line as the Python model does."""

import json

import numpy as np
import pytest
import torch

from edgecompress.cli import main
from edgecompress.families.encoder.artifact import save_artifact
from edgecompress.families.encoder.export import export_encoder
from edgecompress.families.encoder.model_dir import load_encoder

SENTENCES = ["Return the sorted list.", "Open the file for reading and return a stream object."]


@pytest.fixture(scope="module")
def tiny_artifact(tiny_model_dir, tmp_path_factory):
    loaded = load_encoder(tiny_model_dir)
    folder = tmp_path_factory.mktemp("artifact")
    save_artifact(export_encoder(loaded.model, folder / "model.onnx"), loaded.tokenizer, loaded.max_length, folder)
    batch = loaded.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = loaded.model(batch["input_ids"], batch["attention_mask"]).numpy()
    return folder, expected


def test_embed_prints_json_rows_equal_to_the_python_model(tiny_artifact, capsys):
    folder, expected = tiny_artifact
    assert main(["embed", str(folder), *SENTENCES]) == 0
    rows = np.array(json.loads(capsys.readouterr().out))
    assert rows.shape == expected.shape == (2, 32)
    np.testing.assert_allclose(rows, expected, atol=1e-5)


def test_embed_from_a_file_writes_npy_without_pickle(tiny_artifact, tmp_path, capsys):
    folder, expected = tiny_artifact
    (tmp_path / "sentences.txt").write_text("\n".join(SENTENCES) + "\n\n", encoding="utf-8")
    out = tmp_path / "vectors.npy"
    assert main(["embed", str(folder), "--file", str(tmp_path / "sentences.txt"), "--out", str(out)]) == 0
    np.testing.assert_allclose(np.load(out, allow_pickle=False), expected, atol=1e-5)
    assert "2 embeddings of width 32" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "sentences: nothing to embed"),
        (["hello", "--out", "v.json"], "--out: v.json must end in .npy"),
        (["--file", "missing.txt"], "--file: file missing.txt does not exist"),
    ],
)
def test_bad_embed_input_is_one_line_exit_2(tiny_artifact, extra, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, _ = tiny_artifact
    assert main(["embed", str(folder), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "v.json").exists()


def test_a_folder_that_is_not_an_artifact_is_refused(tmp_path, capsys):
    assert main(["embed", str(tmp_path), "hello"]) == 2
    assert "has no encoder.json" in capsys.readouterr().err
