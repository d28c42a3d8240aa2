"""The int4 and structured routes end to end on a tiny BERT, as pipeline stages; their MiniLM numbers are in
BENCHMARKS.md. The example recipes are the routes the `encoder` command runs."""

from pathlib import Path

import onnx
import pytest

from edgecompress.families.encoder import ROUTES, route_stages
from edgecompress.orchestration.pipeline.run import compress
from edgecompress.techniques.distill import Distill
from edgecompress.techniques.transformer import RemoveFfn, RemoveHeads

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _op_types(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_the_example_recipes_are_the_encoder_routes(route):
    from edgecompress.orchestration.recipe import load_recipe

    recipe = load_recipe(EXAMPLES / f"minilm-{route}.yaml")
    assert (recipe.model, recipe.task) == ("minilm", "sentence-encoder")
    assert recipe.stages == list(ROUTES[route])


def test_int4_route_ships_int4_weights_and_embeddings(tiny_encoder, tiny_encoder_task, tmp_path):
    result = compress(tiny_encoder.model, tiny_encoder_task, route_stages("int4", distill_seconds=0), tmp_path)
    ops = _op_types(tmp_path / "final.onnx")
    assert {"MatMulNBits", "GatherBlockQuantized"} <= ops
    assert "MatMulInteger" not in ops
    # 30522 x 32 word embeddings dominate: 4 bits + one fp32 scale per 32 values = 0.625 B/value vs 4
    assert result.baseline.artifact_bytes / result.final.artifact_bytes > 5
    assert result.stages[0].details["block_qat"] == {"linear": 12, "embedding": 1}
    # block QAT puts the weights on the very grid MatMulNBits stores: the int4 file computes what the QAT model does
    assert result.final.score == pytest.approx(result.stages[0].score, abs=2e-3)


def test_distillation_brings_a_pruned_encoder_closer_to_the_original(tiny_encoder, tiny_encoder_task, tmp_path):
    """Every stage is measured on its own ONNX file: stage 1 is the pruned encoder before distillation."""
    result = compress(tiny_encoder.model, tiny_encoder_task, [RemoveFfn(fraction=0.75), Distill(epochs=10)], tmp_path)
    report = result.final.details["distill"]
    assert not report["stopped_by_budget"] and report["steps"] == 10 * 16  # 512 sentences in batches of 32
    before, after = result.stages[0].score, result.final.score
    assert 1 - after < (1 - before) * 0.8, (before, after)
    assert result.final.params == result.stages[0].params


def test_structured_route_and_head_removal_shrink_the_layers(tiny_encoder, tiny_encoder_task, tmp_path):
    """Head removal is a technique added as a config, a handler and one registry line (docs/architecture.md)."""
    stages = [*route_stages("structured", distill_seconds=0), RemoveHeads(fraction=0.5)]
    result = compress(tiny_encoder.model, tiny_encoder_task, stages, tmp_path)
    ffn, heads = result.stages
    # each of 2 layers: 64 -> 32 FFN neurons, 2 x (32 x 32 + 32 + 32 x 32) fewer parameters
    assert result.baseline.params - ffn.params == 2 * (32 * 32 + 32 + 32 * 32)
    assert ffn.details["remove_ffn"]["kept_per_layer"] == [32, 32]
    # then 4 -> 2 heads of 8 channels: q, k, v lose 16 rows (+ bias), the output projection 16 columns
    assert ffn.params - heads.params == 2 * (3 * (16 * 32 + 16) + 32 * 16)
    assert heads.details["remove_heads"]["kept_per_layer"] == [2, 2]
    assert heads.score < ffn.score < 1.0
    assert (tmp_path / "final.onnx").stat().st_size < (tmp_path / "stages/01-remove_ffn.onnx").stat().st_size


def test_finetune_on_a_task_without_labels_is_refused_before_any_work_and_says_to_distill(tiny_encoder, tiny_encoder_task, tmp_path):
    from edgecompress.core.errors import UserError
    from edgecompress.techniques.finetune import Finetune
    from edgecompress.techniques.quantize.config import Qat

    stages = [RemoveFfn(fraction=0.5), Finetune(epochs=1), Qat(bits=4)]
    with pytest.raises(UserError, match=r"^stage 2 \(finetune\), stage 3 \(qat\): the sentence-encoder task has no labels to train on; "
                                        r"recover fidelity with a distill stage"):
        compress(tiny_encoder.model, tiny_encoder_task, stages, tmp_path / "run")
    assert not (tmp_path / "run").exists()
