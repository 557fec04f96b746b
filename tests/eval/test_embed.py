"""The MiniLM embedder against sentence-transformers, the library whose pipeline it reproduces."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
st = pytest.importorskip("sentence_transformers")

from rlaif.eval.embed import load_embedder, minilm_dir  # noqa: E402

TEXTS = [
    "How do I bake bread?",
    "What is the recipe for baking bread?",
    "The stock market fell today.",
    "How do I bake bread?",  # a duplicate: encoded once, returned twice
    "",
    "Écrivez une réponse courte, s'il vous plaît — merci!",
    " ".join(["token"] * 400),  # longer than the model's 256-token limit: truncated, as the library does
    *[f"sample {i}: a short answer about {w}" for i, w in enumerate(["tea", "rain", "maps", "bees", "salt"] * 6)],
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    model = st.SentenceTransformer(str(minilm_dir()), device="cpu", local_files_only=True)
    return model.encode(TEXTS, batch_size=7, normalize_embeddings=True, convert_to_numpy=True)


@pytest.fixture(scope="module")
def full():
    return load_embedder("float32", device="cpu")


def test_float32_equals_sentence_transformers(full, reference):
    vecs = full.encode(TEXTS)
    assert vecs.shape == reference.shape == (len(TEXTS), 384) and vecs.dtype == np.float32
    assert np.max(np.abs(vecs - reference)) < 1e-5
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-6)
    assert np.array_equal(vecs[0], vecs[3])


def test_small_batches_and_one_thread_give_the_same_vectors(full, reference):
    import torch

    threads = torch.get_num_threads()
    full.tokens_per_batch = 40  # a few texts per batch, so batch edges and ordering are exercised
    try:
        torch.set_num_threads(2)
        many = full.encode(TEXTS)
        torch.set_num_threads(1)
        one = full.encode(TEXTS)
    finally:
        full.tokens_per_batch = 4096
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads  # encode restores the caller's thread count
    assert np.max(np.abs(many - reference)) < 1e-5 and np.max(np.abs(one - reference)) < 1e-5


def test_progress_counts_unique_texts_and_empty_input(full):
    seen = []
    full.encode(TEXTS, progress=seen.append)
    assert sum(seen) == len(set(TEXTS))
    assert full.encode([]).shape == (0, 384)


def test_auto_dtype_barely_moves_the_vectors(reference):
    auto = load_embedder("auto", device="cpu")
    vecs = auto.encode(TEXTS)
    assert auto.dtype in ("float32", "bfloat16")
    assert np.min(np.sum(vecs * reference, axis=1)) > 0.999


def test_unknown_dtype_is_refused():
    from rlaif.errors import ConfigError

    with pytest.raises(ConfigError, match="Fix: use auto"):
        load_embedder("int4")
