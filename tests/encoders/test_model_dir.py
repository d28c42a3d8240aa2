import json
import shutil

import numpy as np
import pytest
import torch

from edgecompress.core.errors import UserError
from edgecompress.families.encoder.artifact import embed, save_artifact
from edgecompress.families.encoder.export import export_encoder
from edgecompress.families.encoder.model_dir import bundled_model_dir, load_encoder

SENTENCES = ["Return the number of items in a container.", "The quick brown fox jumps over the lazy dog.", "Hello."]


def test_bundled_minilm_matches_sentence_transformers_encode(minilm):
    from sentence_transformers import SentenceTransformer

    theirs = SentenceTransformer(str(bundled_model_dir()), device="cpu").encode(SENTENCES, convert_to_tensor=True)
    batch = minilm.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = minilm.model(batch["input_ids"], batch["attention_mask"])
    assert ours.shape == (3, 384)
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert minilm.max_length == 256
    assert sum(p.numel() for p in minilm.model.parameters()) == 22_565_376  # 22.7M without the unused pooler


def test_loading_works_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_encoder().model is not None


def test_shipped_artifact_embeds_like_the_python_model(minilm, tmp_path):
    onnx_path = export_encoder(minilm.model, tmp_path / "model.onnx")
    folder = save_artifact(onnx_path, minilm.tokenizer, minilm.max_length, tmp_path / "artifact")
    assert {"model.onnx", "encoder.json", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    # dynamic batch and sequence length: one sentence, then three of different lengths
    batch = minilm.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = minilm.model(batch["input_ids"], batch["attention_mask"]).numpy()
    np.testing.assert_allclose(embed(folder, SENTENCES[:1]), expected[:1], atol=1e-5)
    np.testing.assert_allclose(embed(folder, SENTENCES), expected, atol=1e-5)


def test_residual_sums_are_written_so_ort_keeps_fast_kernels(minilm, tmp_path):
    import onnx

    graph = onnx.load(str(export_encoder(minilm.model, tmp_path / "m.onnx"))).graph
    producers = {o: n for n in graph.node for o in n.output}
    before_layernorm = [producers[n.input[0]].op_type for n in graph.node if n.op_type == "LayerNormalization"]
    assert before_layernorm == ["Sum"] * 13  # the embeddings' sum, then two residual sums in each of 6 layers


def test_missing_directory_is_one_clear_line(tmp_path):
    with pytest.raises(UserError, match="is not a directory"):
        load_encoder(tmp_path / "nope")


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        load_encoder(tmp_path)


def test_decoder_model_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(UserError, match=r"decoder \(gpt2\), not an encoder"):
        load_encoder(tmp_path)


def test_encoder_decoder_model_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5", "is_encoder_decoder": True}))
    with pytest.raises(UserError, match="encoder-decoder"):
        load_encoder(tmp_path)


def test_tokenizer_from_another_model_is_refused(tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertModel

    BertModel(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(bundled_model_dir(), local_files_only=True).save_pretrained(tmp_path)
    with pytest.raises(UserError, match="tokenizer has 30,522 tokens but the model's embedding has 100 rows"):
        load_encoder(tmp_path)


def test_pickled_weights_are_not_loaded(tmp_path):
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(bundled_model_dir() / name, tmp_path / name)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not even a pickle")
    with pytest.raises(UserError, match="cannot load"):
        load_encoder(tmp_path)
