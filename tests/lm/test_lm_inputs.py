"""The decoder family's data, cache and refusals: each a one-line error and exit code 2, with nothing written."""

import json
import shutil

import pytest

from edgecompress.cli import main
from edgecompress.core.errors import UserError
from edgecompress.families.lm import builtin
from edgecompress.families.lm.corpus import stdlib_corpus
from edgecompress.families.lm.model_dir import load_decoder
from edgecompress.families.lm.presets import ROUTES, route_stages


def test_corpus_is_split_by_file_into_disjoint_sets():
    corpus = stdlib_corpus()
    sizes = [len(corpus.train), len(corpus.validation), len(corpus.held_out)]
    assert min(sizes) > 10 and 0.7 < sizes[0] / sum(sizes) < 0.95
    assert not set(corpus.held_out) & set(corpus.train)


def test_the_built_in_model_is_trained_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv(builtin.CACHE_ENV, str(tmp_path))
    trained = []

    def fake_training(spec, out, corpus=None):
        trained.append(spec)
        out.mkdir()
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(builtin, "train_builtin", fake_training)
    spec = builtin.BuiltinSpec(steps=3)
    leftover = tmp_path / "models" / f".training-{builtin.BUILTIN_LM}-{spec.fingerprint()}-killed"
    leftover.mkdir(parents=True)  # a training killed half-way
    first = builtin.builtin_model_dir(spec)
    assert builtin.builtin_model_dir(spec) == first and trained == [spec]
    assert first.name == f"{builtin.BUILTIN_LM}-{spec.fingerprint()}" and not leftover.exists()
    assert builtin.BuiltinSpec(steps=4).fingerprint() != spec.fingerprint()


def test_examples_are_the_presets():
    from edgecompress.orchestration.recipe import load_recipe

    for route, stages in ROUTES.items():
        recipe = load_recipe(f"examples/lm-{route}.yaml")
        assert recipe.task == "language-model" and recipe.model == builtin.BUILTIN_LM and recipe.stages == list(stages)


def test_an_encoder_directory_is_not_a_decoder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(UserError, match="holds BertModel, not a causal language model"):
        load_decoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5", "is_encoder_decoder": True}))
    with pytest.raises(UserError, match="holds a t5 model, not a decoder language model"):
        load_decoder(tmp_path)


def test_a_decoder_without_tokenizer_is_refused_by_the_cli_with_nothing_written(tiny_qwen2_dir, tmp_path, capsys):
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_qwen2_dir / name, folder / name)
    out = tmp_path / "out"
    assert main(["llm", "int8", "--model-dir", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no tokenizer (tokenizer.json)" in err
    assert not out.exists()
    assert main(["llm", "int3", "--out", str(out)]) == 2
    assert "route: unknown route 'int3'; choose one of int8, int4" in capsys.readouterr().err and not out.exists()


def test_a_distillation_budget_for_a_route_without_distillation_is_refused_with_nothing_written(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["llm", "int4", "--distill-seconds", "60", "--out", str(out)]) == 2
    assert "--distill-seconds: route int4 does not distill; use ternary" in capsys.readouterr().err and not out.exists()
    assert [s.stage for s in route_stages("ternary", distill_seconds=0)] == ["qat", "quantize"]
    assert route_stages("ternary", distill_seconds=60)[1].seconds == 60
    for route in ("structured", "sparse24"):  # --distill-seconds sets every route's distillation budget
        assert [s.seconds for s in route_stages(route, distill_seconds=60) if s.stage == "distill"] == [60]
        assert "distill" not in [s.stage for s in route_stages(route, distill_seconds=0)]


def test_qat_on_a_gpt2_decoder_says_its_conv1d_layers_are_not_supported():
    """GPT-2's layers are transformers' Conv1D, not torch Linear: the qat stage names that, in its own fields."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from edgecompress.core.errors import UserError
    from edgecompress.techniques.prune.selection import select_layers

    model = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=100, bos_token_id=0, eos_token_id=0))
    with pytest.raises(UserError) as refused:
        select_layers(model, ("*",), keep=("*lm_head",), keep_classifier=False, stage="qat")
    assert str(refused.value) == ("qat.layers: no layer left for qat after qat.keep; its layers are transformers' Conv1D "
                                  "(GPT-2 style), which is not supported")
