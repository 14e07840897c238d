"""The offline MiniLM embedding model: real ONNX file, real tokenizer."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

from llmos.errors import DiskError
from llmos.memory import embed as E


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_vectors_are_384d_unit_float32() -> None:
    vectors = E.embed(["The cat sat on the mat.", "", "def main():\n    return 0\n" * 80])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_empty_array() -> None:
    assert E.embed([]).shape == (0, 384)


def test_same_text_same_vector() -> None:
    a = E.embed(["Pages evicted from RAM are written to swap."])
    b = E.embed(["Pages evicted from RAM are written to swap."])
    assert np.array_equal(a, b)


def test_paraphrase_is_closer_than_unrelated_sentence() -> None:
    anchor, paraphrase, unrelated = E.embed(
        [
            "My sister lives in Lisbon with her two dogs.",
            "My sibling has two dogs and resides in Lisbon.",
            "The quarterly tax return is due at the end of March.",
        ]
    )
    assert cosine(anchor, paraphrase) > 0.7
    assert cosine(anchor, paraphrase) > cosine(anchor, unrelated) + 0.3


def test_batching_and_padding_do_not_change_vectors() -> None:
    texts = [f"sentence number {i} " + "word " * (i * 7) for i in range(40)]
    texts += ["short", "x" * 3000]  # one past the 256-token truncation
    together = E.embed(texts)
    one_by_one = np.vstack([E.embed([t]) for t in texts])
    sims = np.sum(together * one_by_one, axis=1)
    assert sims.min() > 0.999


def test_batches_group_similar_lengths_and_respect_the_token_budget() -> None:
    lengths = [256] * 20 + [12] * 50
    batches = E._batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(70))
    for batch in batches:
        assert len(batch) <= E.MAX_BATCH
        assert len(batch) * max(lengths[i] for i in batch) <= max(E.BATCH_TOKENS, max(lengths))


def test_chromadb_embedding_function_round_trips_its_config() -> None:
    from chromadb.utils.embedding_functions import known_embedding_functions

    ef = E.MiniLMEmbedding()
    assert known_embedding_functions[E.EMBEDDER_NAME] is E.MiniLMEmbedding
    rebuilt = E.MiniLMEmbedding.build_from_config(ef.get_config())
    assert isinstance(rebuilt, E.MiniLMEmbedding)
    assert not ef.is_legacy()
    out = ef(["hello world"])
    assert len(out) == 1 and len(out[0]) == 384
    assert np.allclose(out[0], E.embed(["hello world"])[0])


def test_missing_model_package_names_the_pip_install(monkeypatch) -> None:
    monkeypatch.setattr(E, "_model", None)
    monkeypatch.setattr(E, "MODEL_PACKAGE", ("no_such_llmos_pkg", "no-such-llmos-pkg==1.0", "model.onnx"))
    with pytest.raises(DiskError, match=r"pip install no-such-llmos-pkg==1\.0"):
        E.load()


def test_corrupt_model_file_is_a_disk_error(monkeypatch, tmp_path) -> None:
    package = tmp_path / "fake_minilm_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.onnx").write_bytes(b"this is not an onnx model")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setattr(E, "_model", None)
    monkeypatch.setattr(E, "MODEL_PACKAGE", ("fake_minilm_pkg", "fake-minilm-pkg==1.0", "model.onnx"))
    with pytest.raises(DiskError, match="onnxruntime cannot load .*model.onnx"):
        E.load()
    assert "fake_minilm_pkg" not in sys.modules  # located, never imported


def test_dropping_the_nan_guards_changes_no_vector() -> None:
    import onnxruntime as ort

    onnx_path, _ = E.model_files()
    original = onnx_path.read_bytes()
    edited = E._drop_nan_guards(original)

    def ops(model: bytes) -> list[bytes]:
        graph = next(v for n, _w, v in E._fields(model) if n == 7)
        return [next(x for f, _w2, x in E._fields(node) if f == 4) for n, _w, node in E._fields(graph) if n == 1]

    assert b"IsNaN" in ops(original) and b"IsNaN" not in ops(edited)
    assert E._drop_nan_guards(edited) == edited  # nothing left to edit
    assert E._drop_nan_guards(b"not a model") == b"not a model"

    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, (4, 64)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 10:] = 0  # padded rows are where the guard would matter, if anywhere
    mask[3, 40:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    before = ort.InferenceSession(original, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    after = ort.InferenceSession(edited, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert np.array_equal(before, after)
