"""Tiny decoder directories, made here: a briefly trained Llama (the built-in model's recipe at a toy size), and
random Qwen2 and GPT-2 models that share its tokenizer. Each is an ordinary Hugging Face folder."""

import dataclasses

import pytest
import torch

from edgecompress.families.lm.builtin import BuiltinSpec, train_builtin, train_tokenizer
from edgecompress.families.lm.corpus import stdlib_corpus

# vocabulary of 4,096: as large as the built-in model's, so the token table is quantized as it is there
TINY = BuiltinSpec(vocab_size=4096, hidden_size=32, layers=2, heads=2, kv_heads=1, intermediate_size=64, context=256,
                   window=64, batch_size=8, steps=20)


def small_corpus():
    corpus = stdlib_corpus()
    return dataclasses.replace(corpus, train=corpus.train[:40])


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    return train_builtin(TINY, tmp_path_factory.mktemp("lm") / "llama", corpus=small_corpus())


@pytest.fixture(scope="module")
def sharp_llama(tiny_llama_dir):
    """(decoder, task): the tiny Llama with its final norm scaled up 20x: 20 training steps leave its predictions
    nearly flat, and a sharper teacher makes what pruning loses, and distillation wins back, measurable."""
    from edgecompress.families.lm.model_dir import load_decoder
    from edgecompress.families.lm.task import language_model_task

    decoder = load_decoder(tiny_llama_dir)
    with torch.no_grad():
        dict(decoder.model.named_parameters())["lm.model.norm.weight"].mul_(20)
    return decoder, language_model_task(decoder, seed=0, n_eval=8, n_train=32, n_validation=8)


def kl_to_original(model, task) -> float:
    """Mean KL divergence of `model`'s next-token distribution from the original's, on the task's held-out windows."""
    from edgecompress.families.lm.agreement import token_statistics

    model.eval()
    with torch.no_grad():
        stats = torch.cat([token_statistics(model(**inputs), targets) for inputs, targets in task.eval_loader])
    return stats[:, 2].mean().item()


@pytest.fixture(scope="session")
def tokenizer(tiny_llama_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir, local_files_only=True)


def random_decoder_dir(config, tokenizer, folder):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tokenizer, tmp_path_factory):
    from transformers import Qwen2Config

    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=256, tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id)
    return random_decoder_dir(config, tokenizer, tmp_path_factory.mktemp("lm") / "qwen2")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tokenizer, tmp_path_factory):
    from transformers import GPT2Config

    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=256,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    return random_decoder_dir(config, tokenizer, tmp_path_factory.mktemp("lm") / "gpt2")


__all__ = ["TINY", "kl_to_original", "random_decoder_dir", "train_tokenizer"]
