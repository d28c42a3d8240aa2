import pytest
import torch
import torch.nn.functional as F

from edgecompress.families.encoder.corpus import docstring_corpus
from edgecompress.families.encoder.fidelity import fidelity


def test_corpus_is_deterministic_disjoint_english_prose():
    first, second = docstring_corpus(n_eval=2000, n_train=4000), docstring_corpus(n_eval=2000, n_train=4000)
    assert first == second
    assert len(first.eval) == 2000 and len(first.train) == 4000
    assert not set(first.eval) & set(first.train)
    assert len(set(first.eval)) == 2000
    for sentence in first.eval + first.train:
        assert sentence[0].isupper() and sentence.endswith(".") and 6 <= len(sentence.split()) <= 30
        assert ">>>" not in sentence


def test_corpus_seed_changes_the_split_not_the_sentences():
    a, b = docstring_corpus(n_eval=500, n_train=500, seed=0), docstring_corpus(n_eval=500, n_train=500, seed=1)
    assert a.eval != b.eval


def test_corpus_refuses_more_sentences_than_exist():
    with pytest.raises(ValueError, match="standard library gives"):
        docstring_corpus(n_eval=100_000)


def test_fidelity_of_identical_embeddings_is_perfect():
    e = F.normalize(torch.randn(300, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    f = fidelity(e, e)
    assert (f.cosine_mean, f.overlap_at_10) == (pytest.approx(1.0), 1.0)


def test_overlap_counts_shared_neighbours_by_hand():
    # 1-D points on a circle: neighbours of point 0 are 1 and 2 (k=2); swapping 2 for 3 in the
    # compressed copy keeps one of the two.
    angles = torch.tensor([0.0, 0.1, 0.2, 1.0, 2.0, 3.0])
    ref = torch.stack([angles.cos(), angles.sin()], dim=1)
    moved = angles.clone()
    moved[3] = 0.15
    moved[2] = 1.0
    comp = torch.stack([moved.cos(), moved.sin()], dim=1)
    f = fidelity(ref, comp, queries=1, k=2)
    assert f.overlap_at_10 == 0.5


def test_fidelity_cosine_and_p5_measure_the_worst_rows():
    ref = F.normalize(torch.randn(100, 8, generator=torch.Generator().manual_seed(1)), dim=1)
    comp = ref.clone()
    comp[:10] = -comp[:10]  # ten sentences turned around: cosine -1
    f = fidelity(ref, comp)
    assert f.cosine_mean == pytest.approx(0.8)
    assert f.cosine_p5 == pytest.approx(-1.0)


def test_fidelity_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        fidelity(torch.zeros(3, 4), torch.zeros(3, 5))
