"""ONNX files and encoder/artifact folders from elsewhere: external data and links stay inside the folder,
tensors and files stay under their limits, and a folder's own Python code never runs.

The secret outside the model's folder is a real file; a model that read it as weights would embed its bytes.
The folder payloads write a marker file when imported; the tests assert it never appears.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from onnx import TensorProto, helper

from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.families.encoder.model_dir import bundled_model_dir
from edgecompress.runtime.sessions import make_session
from edgecompress.untrusted.onnx_files import check_onnx_file

OUTSIDE = "outside the model's folder"


def _model_with_external(folder, location: str, dims=(1, 384), offset=0) -> "os.PathLike":
    """An encoder-shaped graph (ids -> Gather from a table) whose table lives in external data at `location`."""
    table = TensorProto(name="table", data_type=TensorProto.FLOAT, dims=list(dims), data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(int(np.prod(dims)) * 4))):
        entry = table.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["gathered"]), helper.make_node("ReduceMean", ["gathered", "axes"], ["sentence_embedding"], keepdims=0)],
        "g", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["b", 384])],
        [table, helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.bin"
    path.write_bytes(np.full(384, 7.0, np.float32).tobytes())  # 1,536 bytes a model could read as a table
    return path


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "a" / "b"
    path.mkdir(parents=True)
    return path


def _escape(kind: str, folder, secret) -> str:
    """An external-data location that leads to `secret`, outside `folder`: through .., absolutely, or a link."""
    if kind == "link":
        os.symlink(secret, folder / "linked.bin")
    return {"dotdot": "../../secret.bin", "absolute": str(secret), "link": "linked.bin"}[kind]


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "link"])
def test_external_data_outside_the_models_folder_is_refused_everywhere(kind, folder, secret, capsys):
    model = _model_with_external(folder, _escape(kind, folder, secret))
    with pytest.raises(UserError, match=OUTSIDE):
        check_onnx_file(model)
    with pytest.raises(UserError, match=OUTSIDE):
        make_session(model)  # every ONNX Runtime session (scoring, timing) goes through it
    out = folder / "model.ecz"
    assert main(["pack", str(model), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert OUTSIDE in err and err.count("\n") == 1 and not out.exists()


def test_external_data_inside_the_folder_is_allowed(folder):
    (folder / "weights.bin").write_bytes(np.ones(384, np.float32).tobytes())
    model = _model_with_external(folder, "weights.bin")
    check_onnx_file(model)
    out = make_session(model).run(None, {"input_ids": np.zeros((1, 3), np.int64), "attention_mask": np.ones((1, 3), np.int64)})[0]
    assert out.shape == (1, 384) and np.all(out == 1.0)


def test_external_data_beyond_the_end_of_its_file_is_refused(folder):
    (folder / "weights.bin").write_bytes(bytes(100))
    with pytest.raises(UserError, match="claims 1,536 bytes at offset 0 of 'weights.bin', which has 100"):
        check_onnx_file(_model_with_external(folder, "weights.bin"))


def test_a_tensor_larger_than_the_limit_is_refused_before_loading(folder, monkeypatch):
    model = _model_with_external(folder, "weights.bin", dims=(1 << 20, 1 << 20))
    with pytest.raises(UserError, match=r"over the limit of 2,147,483,648 bytes \(raise it with EDGECOMPRESS_MAX_TENSOR_BYTES"):
        check_onnx_file(model)
    (folder / "weights.bin").write_bytes(np.ones(384, np.float32).tobytes())
    monkeypatch.setenv("EDGECOMPRESS_MAX_TENSOR_BYTES", "1000")
    with pytest.raises(UserError, match="EDGECOMPRESS_MAX_TENSOR_BYTES"):
        check_onnx_file(_model_with_external(folder, "weights.bin"))


def _artifact(folder, model_name="model.onnx"):
    """An artifact folder as `edgecompress encoder` writes it: tokenizer files, encoder.json, model.onnx."""
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copyfile(bundled_model_dir() / name, folder / name)
    (folder / "encoder.json").write_text(json.dumps({"model": model_name, "max_length": 16}))
    return folder


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "link"])
def test_embed_refuses_an_artifact_whose_model_reads_outside_its_folder(kind, folder, secret, capsys):
    _model_with_external(_artifact(folder), _escape(kind, folder, secret))
    code = main(["embed", str(folder), "a sentence"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(err) == 1, err
    assert (OUTSIDE if kind != "link" else "is a link to") in err[0], err  # a link is refused by the folder check first


@pytest.mark.parametrize("name", ["../model.onnx", "/tmp/model.onnx", "sub/../../model.onnx"])
def test_encoder_json_naming_a_model_outside_its_folder_is_refused(name, folder, capsys):
    _model_with_external(folder.parent, "weights.bin")
    _artifact(folder, model_name=name)
    code = main(["embed", str(folder), "a sentence"])
    err = capsys.readouterr().err
    assert code == 2 and "names the model file" in err and "outside its folder" in err, err


def test_a_link_out_of_an_encoder_folder_is_refused(folder, secret, capsys):
    _model_with_external(_artifact(folder), "weights.bin")
    os.symlink(secret, folder / "vocab_extra.txt")
    code = main(["embed", str(folder), "a sentence"])
    err = capsys.readouterr().err
    assert code == 2 and "is a link to" in err and "outside the folder" in err, err


def test_an_oversized_tokenizer_file_is_refused(folder, monkeypatch, capsys):
    _artifact(folder)
    _model_with_external(folder, "weights.bin")
    monkeypatch.setenv("EDGECOMPRESS_MAX_TEXT_BYTES", "100000")  # tokenizer.json is ~700 KB, vocab.txt ~230 KB
    code = main(["embed", str(folder), "a sentence"])
    err = capsys.readouterr().err
    assert code == 2 and "over the limit of 100,000 bytes (raise it with EDGECOMPRESS_MAX_TEXT_BYTES" in err, err


PAYLOAD = "import pathlib\npathlib.Path({marker!r}).write_text('the folder code ran')\n"


def test_an_encoder_folder_asking_for_its_own_code_is_refused_and_the_code_never_runs(tmp_path, capsys):
    """config.json's auto_map names modeling_evil.py (Hugging Face's trust_remote_code): never imported."""
    folder, marker = tmp_path / "encoder", tmp_path / "pwned"
    folder.mkdir()
    (folder / "modeling_evil.py").write_text(PAYLOAD.format(marker=str(marker)))
    (folder / "configuration_evil.py").write_text(PAYLOAD.format(marker=str(marker)))
    (folder / "config.json").write_text(json.dumps({"model_type": "evil", "auto_map": {
        "AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"}}))
    code = main(["encoder", "int8", "--model-dir", str(folder), "--out", str(tmp_path / "out")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(err) == 1 and "model_dir: cannot load" in err[0], err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_tokenizer_asking_for_its_own_code_is_refused_and_never_runs_it(folder, tmp_path, capsys):
    marker = tmp_path / "pwned"
    _artifact(folder)
    _model_with_external(folder, "weights.bin")
    (folder / "weights.bin").write_bytes(np.ones(384, np.float32).tobytes())
    (folder / "tokenization_evil.py").write_text(PAYLOAD.format(marker=str(marker)))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.update(tokenizer_class="EvilTokenizer", auto_map={"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]})
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    code = main(["embed", str(folder), "a sentence"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot load the tokenizer" in err and "custom code" in err, err
    assert not marker.exists()


def test_a_folder_with_too_many_files_is_refused(folder, monkeypatch, capsys):
    _model_with_external(_artifact(folder), "weights.bin")
    monkeypatch.setenv("EDGECOMPRESS_MAX_FOLDER_FILES", "3")
    code = main(["embed", str(folder), "a sentence"])
    err = capsys.readouterr().err
    assert code == 2 and "is 4 files, over the limit of 3 files (raise it with EDGECOMPRESS_MAX_FOLDER_FILES" in err, err


def test_an_onnx_file_over_the_size_limit_is_refused_unread(folder, monkeypatch, capsys):
    model = _model_with_external(folder, "weights.bin")
    monkeypatch.setenv("EDGECOMPRESS_MAX_MODEL_BYTES", "100")
    assert main(["pack", str(model), "--out", str(folder / "m.ecz")]) == 2
    assert "over the limit of 100 bytes (raise it with EDGECOMPRESS_MAX_MODEL_BYTES" in capsys.readouterr().err


def test_embed_refuses_a_device_or_an_oversized_sentence_file(folder, tmp_path, monkeypatch, capsys):
    _model_with_external(_artifact(folder), "weights.bin")
    assert main(["embed", str(folder), "--file", "/dev/zero"]) == 2
    assert "/dev/zero is not a regular file" in capsys.readouterr().err
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("a sentence\n" * 100)
    monkeypatch.setenv("EDGECOMPRESS_MAX_TEXT_BYTES", "1000")
    assert main(["embed", str(folder), "--file", str(sentences)]) == 2
    assert "sentences.txt is 1,100 bytes, over the limit of 1,000 bytes" in capsys.readouterr().err
