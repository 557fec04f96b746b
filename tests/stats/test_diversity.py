"""Diversity metrics: hand-computed values and cross-checks against nltk, sacrebleu and scipy."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import sacrebleu
from nltk.util import ngrams as nltk_ngrams
from scipy.spatial.distance import pdist

from rlaif.stats import diversity as D


def _random_groups(seed, n_groups=40, vocab=25):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    groups = []
    for _ in range(n_groups):
        k = rng.randint(1, 6)
        sub = words[: rng.randint(2, vocab)]
        groups.append([" ".join(rng.choice(sub) for _ in range(rng.randint(0, 18))) for _ in range(k)])
    return groups


def test_identical_samples():
    one = "the cat sat on the mat".split()
    same = [one] * 4
    # distinct-n pools the samples: 4 copies hold one copy's distinct n-grams among 4x the n-grams
    assert D.distinct_n([one], 1) == pytest.approx(5 / 6)
    assert D.distinct_n(same, 1) == pytest.approx(5 / 24)
    assert D.distinct_n(same, 2) == pytest.approx(5 / 20)
    assert D.self_bleu(same) == pytest.approx(100.0)
    assert D.embedding_diversity(np.ones((4, 3))) == 0.0


def test_distinct_n_matches_nltk_counting():
    for group in _random_groups(1):
        toks = [t.split() for t in group]
        for n in (1, 2, 3):
            grams = [g for s in toks for g in nltk_ngrams(s, n)]
            expected = len(set(grams)) / len(grams) if grams else None
            got = D.distinct_n(toks, n)
            assert got == (pytest.approx(expected) if expected is not None else None)


def test_ead_by_hand():
    # tokens a b a c, V = 10: n=1: 3 distinct of C=4, E = 10(1 - 0.9^4) = 3.439;
    # n=2: 3 of 3, E = 2.71; n=3: 2 of 2, E = 1.9; n=4: 1 of 1, E = 1; n=5: none (skipped)
    expected = (3 / 3.439 + 3 / 2.71 + 2 / 1.9 + 1 / 1.0) / 4
    assert D.ead([["a", "b", "a", "c"]], vocab_size=10) == pytest.approx(expected, rel=1e-12)
    # a huge vocabulary makes EAD the plain distinct ratio
    toks = [["a", "b", "a", "c", "a", "b"]]
    assert D.ead(toks, vocab_size=10**9, orders=(1,)) == pytest.approx(3 / 6, rel=1e-6)
    assert D.ead([[]], vocab_size=10) is None


def test_ead_with_one_vocabulary_per_order():
    toks = [["a", "b", "a", "c"]]
    # n-gram vocabulary of the input: 3 words, 3 bigrams, 2 trigrams, 1 four-gram, no five-gram
    assert D.ngram_vocabulary(toks) == [3, 3, 2, 1, 0]
    # E = V(1 - ((V-1)/V)^C): n=1: 3(1 - (2/3)^4) = 195/81; n=2: 3(1 - (2/3)^3) = 57/27;
    # n=3: 2(1 - (1/2)^2) = 3/2; n=4: V = 1 gives E = 1; n=5 has no n-gram and is skipped
    expected = (3 / (195 / 81) + 3 / (57 / 27) + 2 / 1.5 + 1 / 1) / 4
    assert D.ead(toks, vocab_size=D.ngram_vocabulary(toks)) == pytest.approx(expected, rel=1e-12)
    assert D.ead(toks, vocab_size=[10] * 5) == D.ead(toks, vocab_size=10)
    with pytest.raises(ValueError, match="orders up to 5"):
        D.ead(toks, vocab_size=[10, 10])


def test_self_bleu_equals_sacrebleu_sentence_bleu():
    checked = 0
    for group in _random_groups(2, n_groups=60):
        if len(group) < 2:
            assert D.self_bleu([t.split() for t in group]) is None
            continue
        ours = D.self_bleu_scores([t.split() for t in group])
        ref = [sacrebleu.sentence_bleu(h, group[:i] + group[i + 1:], tokenize="none").score
               for i, h in enumerate(group)]
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
        checked += 1
    assert checked > 30


def test_self_bleu_on_token_ids_and_natural_text(smol_tokenizer):
    texts = ["The quick brown fox jumps over the lazy dog.", "A quick brown dog jumps over the lazy fox!",
             "The lazy dog sleeps all day, and the fox jumps.", "Completely different words appear here."]
    ids = [smol_tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    joined = [" ".join(map(str, x)) for x in ids]
    ours = D.self_bleu_scores(ids)
    ref = [sacrebleu.sentence_bleu(h, joined[:i] + joined[i + 1:], tokenize="none").score for i, h in enumerate(joined)]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    words = D.self_bleu_scores([t.split() for t in texts])
    ref_w = [sacrebleu.sentence_bleu(h, texts[:i] + texts[i + 1:], tokenize="none").score for i, h in enumerate(texts)]
    np.testing.assert_allclose(words, ref_w, rtol=0, atol=1e-9)


def test_embedding_diversity_matches_pairwise_cosines():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(7, 16))
    assert D.embedding_diversity(v) == pytest.approx(np.mean(pdist(v, "cosine")), abs=1e-12)
    assert D.embedding_diversity(v[:1]) is None


def test_policy_diversity_per_input_and_across_input():
    groups = _random_groups(3, n_groups=25)
    tok = [[t.split() for t in g] for g in groups]
    rng = np.random.default_rng(1)
    emb = [rng.normal(size=(len(g), 8)) for g in groups]
    res = D.policy_diversity(tok, vocab_size=50, embeddings_by_prompt=emb)
    per, across = res["per_input"], res["across_input"]

    def avg(values):
        values = [x for x in values if x is not None]
        return sum(values) / len(values)

    assert per.distinct_1 == pytest.approx(avg([D.distinct_n(g, 1) for g in tok]))
    assert per.distinct_2 == pytest.approx(avg([D.distinct_n(g, 2) for g in tok]))
    assert per.ead == pytest.approx(avg([D.ead(g, 50) for g in tok]))
    assert per.self_bleu == pytest.approx(avg([D.self_bleu(g) for g in tok]))
    assert per.embedding == pytest.approx(avg([D.embedding_diversity(e) for e in emb]))
    firsts = [g[0] for g in tok]
    assert across.distinct_2 == pytest.approx(D.distinct_n(firsts, 2))
    assert across.self_bleu == pytest.approx(D.self_bleu(firsts))
    assert across.embedding == pytest.approx(D.embedding_diversity(np.stack([e[0] for e in emb])))
    assert set(per.to_dict()) == {"distinct_1", "distinct_2", "ead", "self_bleu", "embedding"}


def test_ead_on_its_own_tokens_with_a_fixed_vocabulary_by_hand():
    # One prompt, two samples: words for distinct-n, ids of a 4-token vocabulary for EAD (V = 4).
    words = [["x", "y", "z"], ["x", "w"]]
    ids = [[0, 1, 0], [1, 1]]
    res = D.policy_diversity([words], vocab_size=4, ead_samples_by_prompt=[ids])
    # E = V(1 - ((V-1)/V)^C) = 4(1 - (3/4)^C).
    # per input, both samples: n=1: ids 0 1 0 1 1, C = 5, 2 distinct, E = 4(1 - 243/1024) = 781/256;
    # n=2: (0,1) (1,0) (1,1), C = 3, 3 distinct, E = 4(1 - 27/64) = 37/16; n=3: (0,1,0), C = 1, E = 1;
    # n=4, 5: no n-gram, skipped. EAD = (2/(781/256) + 3/(37/16) + 1/1) / 3.
    assert res["per_input"].ead == pytest.approx((512 / 781 + 48 / 37 + 1) / 3, rel=1e-12)
    # across inputs, the first sample 0 1 0: n=1: C = 3, 2 distinct, E = 37/16; n=2: C = 2, 2 distinct,
    # E = 4(1 - 9/16) = 7/4; n=3: C = 1, 1 distinct, E = 1. EAD = (32/37 + 8/7 + 1) / 3.
    assert res["across_input"].ead == pytest.approx((32 / 37 + 8 / 7 + 1) / 3, rel=1e-12)
    # the other metrics count the words: 4 distinct of 5
    assert res["per_input"].distinct_1 == pytest.approx(4 / 5)
    assert D.policy_diversity([words], vocab_size=4)["per_input"].distinct_1 == res["per_input"].distinct_1
    with pytest.raises(ValueError, match="same samples"):
        D.policy_diversity([words], vocab_size=4, ead_samples_by_prompt=[ids[:1]])


def test_single_sample_prompts_have_no_per_input_bleu():
    res = D.policy_diversity([[["a", "b"]], [["c", "d", "e"]]], vocab_size=5)
    assert res["per_input"].self_bleu is None and res["per_input"].embedding is None
    assert res["per_input"].distinct_1 == 1.0
    assert res["across_input"].self_bleu == 0.0


def test_ead_expectation_is_stable_for_large_vocabularies():
    v, c = 49_152, 10_000
    direct = v * (1 - ((v - 1) / v) ** c)
    got = D._ead(np.array([[1000.0]]), np.array([[float(c)]]), v)[0]
    assert got == pytest.approx(1000 / direct, rel=1e-9)
    assert math.isfinite(got)
