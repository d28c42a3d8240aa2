"""Distillation: a pruned student learns the teacher's embeddings, within its budget, reproducibly."""

import copy

import pytest
import torch

from edgecompress.core.errors import UserError
from edgecompress.core.masks import get_mask, set_mask
from edgecompress.techniques.distill.loop import distill
from edgecompress.techniques.quantize.qat import prepare_qat
from edgecompress.techniques.transformer.structured import remove_ffn_neurons
from tests.encoders.test_structured import embeddings, tiny_encoder, token_feeds
from tests.quantize.test_qat import distinct_levels


@pytest.fixture
def teacher():
    return tiny_encoder()


@pytest.fixture
def student(teacher):
    pruned = copy.deepcopy(teacher)
    remove_ffn_neurons(pruned, 0.75, refit=False)
    return pruned


def cosine_loss(student, teacher, feeds) -> float:
    return float(1 - torch.nn.functional.cosine_similarity(embeddings(student, feeds), embeddings(teacher, feeds)).mean())


def test_distillation_lowers_the_cosine_loss_on_the_training_batches(student, teacher):
    feeds = token_feeds()
    before = cosine_loss(student, teacher, feeds)
    report = distill(student, teacher, feeds, epochs=15, lr=1e-3)
    after = cosine_loss(student, teacher, feeds)
    assert before > 0.01 and after < 0.3 * before, (before, after)
    assert report.steps == 15 * len(feeds) and report.epochs == 15 and not report.stopped_by_budget
    assert report.last_loss < report.first_loss


def test_mse_loss_trains_too(student, teacher):
    feeds = token_feeds()
    before = cosine_loss(student, teacher, feeds)
    distill(student, teacher, feeds, epochs=15, lr=1e-3, loss="mse")
    assert cosine_loss(student, teacher, feeds) < 0.5 * before


def test_time_budget_is_respected(student, teacher):
    report = distill(student, teacher, token_feeds(), seconds=0.5, epochs=10_000)
    # 10,000 epochs would take minutes. It stops before a step that would end past the budget (the first step
    # always runs); step times depend on the machine's load, so the bound on the time taken is loose
    assert report.stopped_by_budget and 0 < report.steps < 10_000 * 4
    assert report.seconds < 5


def test_same_seed_gives_identical_weights_and_another_seed_does_not(student, teacher):
    def pairs(x, y):
        return zip(x.state_dict().values(), y.state_dict().values())

    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        runs[name] = copy.deepcopy(student)
        distill(runs[name], teacher, token_feeds(), epochs=2, seed=seed, dropout=True)
    assert all(torch.equal(p, q) for p, q in pairs(runs["a"], runs["b"]))
    assert not all(torch.equal(p, q) for p, q in pairs(runs["a"], runs["c"]))


def test_distillation_does_not_touch_the_global_random_state(student, teacher):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    distill(student, teacher, token_feeds(), epochs=1)
    assert torch.equal(torch.rand(3), expected)


def test_masked_zeros_and_fake_quant_grid_survive_distillation(student, teacher):
    layers = student.backbone.encoder.layer
    masked, quantized = layers[0].output.dense, layers[1].intermediate.dense
    torch.manual_seed(0)
    set_mask(masked, torch.rand(masked.weight.shape) > 0.5)
    set_mask(quantized, torch.rand(quantized.weight.shape) > 0.5)
    prepare_qat({"q": quantized}, 4)
    originals = {m: m.parametrizations.weight.original.detach().clone() for m in (masked, quantized)}
    distill(student, teacher, token_feeds(), epochs=5, lr=1e-3)
    for module in (masked, quantized):
        keep = get_mask(module).bool()
        assert torch.all(module.weight[~keep] == 0)
        assert not torch.equal(module.parametrizations.weight.original, originals[module])  # it did train
    assert torch.count_nonzero(masked.weight) == get_mask(masked).sum()  # no kept weight is lost either
    assert distinct_levels(quantized.weight) <= 15  # 4 bits: -7..7 steps per output channel


def test_student_ends_in_eval_mode_with_its_dropout_and_the_teacher_unchanged(student, teacher):
    frozen = copy.deepcopy(teacher.state_dict())
    teacher.train()
    distill(student, teacher, token_feeds(), epochs=1)
    assert not student.training and teacher.training
    assert {m.p for m in student.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}
    assert all(torch.equal(frozen[k], v) for k, v in teacher.state_dict().items())


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"loss": "l1"}, "distill.loss"),
        ({"seconds": 0}, "distill.seconds"),
        ({"seconds": -5.0}, "distill.seconds"),
        ({"epochs": 0}, "distill.epochs"),
        ({"epochs": 1.5}, "distill.epochs"),
        ({"lr": 0.0}, "distill.lr"),
        ({"lr": float("nan")}, "distill.lr"),
    ],
)
def test_bad_settings_are_user_errors_naming_the_field(student, teacher, settings, field):
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        distill(student, teacher, token_feeds(), **settings)


def test_no_batches_is_a_user_error(student, teacher):
    with pytest.raises(UserError, match="no training batches"):
        distill(student, teacher, [])


def test_length_grouping_keeps_every_sentence_and_its_embedding_with_less_padding(teacher):
    from edgecompress.techniques.distill.loop import length_grouped

    feeds = token_feeds()
    grouped = length_grouped(feeds)
    assert [len(b["input_ids"]) for b in grouped] == [8, 8, 8, 8]
    assert sum(b["attention_mask"].numel() for b in grouped) < sum(f["attention_mask"].size for f in feeds)

    def by_sentence(batches):
        table = {}
        for batch in batches:
            ids, mask = torch.as_tensor(batch["input_ids"]), torch.as_tensor(batch["attention_mask"])
            with torch.no_grad():
                rows = teacher(ids, mask)
            for sentence, m, row in zip(ids, mask, rows):
                table[tuple(sentence[m == 1].tolist())] = row
        return table

    original, regrouped = by_sentence(feeds), by_sentence(grouped)
    assert original.keys() == regrouped.keys() and len(original) == 32
    assert all(torch.allclose(original[k], regrouped[k], atol=1e-5) for k in original)


def test_a_frozen_student_is_a_user_error(student, teacher):
    student.requires_grad_(False)
    with pytest.raises(UserError, match="no trainable parameters"):
        distill(student, teacher, token_feeds())
