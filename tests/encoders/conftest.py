"""Encoder fixtures: the real bundled all-MiniLM-L6-v2 (loaded once), and a tiny random BERT directory."""

from __future__ import annotations

import pytest
import torch

from edgecompress.families.encoder.model_dir import bundled_model_dir, load_encoder


@pytest.fixture(scope="session")
def minilm():
    return load_encoder()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer, 32-wide BERT with the bundled tokenizer: fast end-to-end runs.

    Random weights at 10x BERT's init scale, so its layers matter as much as a trained model's do
    (at 0.02 the FFN barely touches the residual stream and pruning it changes nothing).
    """
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=128, initializer_range=0.2)
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(bundled_model_dir(), local_files_only=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_dir):
    return load_encoder(tiny_model_dir)


@pytest.fixture(scope="session")
def tiny_encoder_task(tiny_encoder):
    """The sentence-encoder task on fewer sentences (256 held out, 512 for training): fast runs."""
    from edgecompress.families.encoder.task import sentence_encoder_task

    return sentence_encoder_task(tiny_encoder, seed=0, n_eval=256, n_train=512)
