import numpy as np
import pytest

from shared_core import CachedEmbedder, ConfigurationError, StaticEmbedder, get_embedder
from shared_core.embeddings import LangChainEmbedder, LlamaIndexEmbedder, OpenAICompatibleEmbedder


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_static_embedder_is_offline_batched_and_meaningful():
    emb = StaticEmbedder()
    x = emb.embed(
        [
            "The cat sat on the mat.",
            "A kitten rests on a rug.",
            "Quarterly revenue grew by 12 percent.",
        ]
    )
    assert x.shape == (3, 256) and x.dtype == np.float32
    assert cosine(x[0], x[1]) > cosine(x[0], x[2])
    np.testing.assert_allclose(emb.embed(["A kitten rests on a rug."])[0], x[1], rtol=1e-5)


def test_static_embedder_handles_empty_text_in_a_batch():
    x = StaticEmbedder().embed(["", "hello"])
    assert not x[0].any() and x[1].any()


def test_construction_does_no_io():
    emb = StaticEmbedder()
    assert emb._table is None
    assert emb.id == "wordllama-l2-supercat-256"


def test_cache_returns_the_same_vectors_without_recomputing(tmp_path):
    calls = []

    class Counting:
        id = "counting"

        def embed(self, texts):
            calls.append(len(texts))
            return np.arange(len(texts) * 3, dtype=np.float32).reshape(-1, 3)

    cached = CachedEmbedder(Counting(), cache_dir=tmp_path, batch_size=2)
    a = cached.embed(["a", "b", "c"])
    b = cached.embed(["a", "b", "c"])
    np.testing.assert_array_equal(a, b)
    assert calls == [2, 1]  # the second call came from disk
    cached.embed(["a", "b", "d"])
    assert calls == [2, 1, 2, 1]


def test_get_embedder_names():
    assert get_embedder("wordllama").id == "wordllama-l2-supercat-256"
    assert get_embedder("default").id == "wordllama-l2-supercat-256"
    assert get_embedder("openai-compatible:Qwen/Qwen3-Embedding-8B").id == (
        "openai-compatible:Qwen/Qwen3-Embedding-8B"
    )
    with pytest.raises(ConfigurationError, match="unknown embedder 'bert'; known: 'wordllama'"):
        get_embedder("bert")


def test_framework_adapters_are_duck_typed():
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from llama_index.core.embeddings import MockEmbedding

    lc = LangChainEmbedder(DeterministicFakeEmbedding(size=8))
    assert lc.embed(["a", "b"]).shape == (2, 8)
    assert lc.id.startswith("langchain:DeterministicFakeEmbedding")
    li = LlamaIndexEmbedder(MockEmbedding(embed_dim=8))
    assert li.embed(["a"]).shape == (1, 8)


def test_openai_compatible_embedder_through_the_real_sdk():
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            seen.append((self.path, self.headers["authorization"], body))
            payload = json.dumps(
                {
                    "object": "list",
                    "model": body["model"],
                    "data": [
                        {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
                        {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
                    ],
                    "usage": {"prompt_tokens": 2, "total_tokens": 2},
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        emb = OpenAICompatibleEmbedder(
            "Qwen/Qwen3-Embedding-8B",
            base_url=f"http://127.0.0.1:{server.server_port}/v1",
            api_key="sk-secret",
        )
        x = emb.embed(["first", "second"])
    finally:
        server.shutdown()
    np.testing.assert_array_equal(x, [[1.0, 0.0], [0.0, 1.0]])  # re-ordered by index
    path, auth, body = seen[0]
    assert path == "/v1/embeddings" and auth == "Bearer sk-secret"
    assert body["input"] == ["first", "second"] and body["model"] == "Qwen/Qwen3-Embedding-8B"
    assert "sk-secret" not in repr(emb)
