"""Query embedders: a protocol, the offline default, adapters and a cache.

The router embeds queries with an :class:`Embedder` and records its ``id`` in the router file,
so a router never meets vectors from another embedding space.

* :class:`StaticEmbedder` (the default, id ``wordllama-l2-supercat-256``): the static
  token-embedding table that ships inside the ``wordllama`` wheel (256-d, 32k tokens), read
  directly with ``safetensors`` and ``tokenizers``; mean of the token vectors. Offline, no model
  download, ~0.03 ms a query.
* :class:`OpenAICompatibleEmbedder`: any OpenAI-compatible ``/embeddings`` endpoint (the paper
  used Qwen3-Embedding-8B through one).
* :class:`LangChainEmbedder`, :class:`LlamaIndexEmbedder`: wrap any LangChain ``Embeddings`` or
  LlamaIndex embedding model (duck-typed, so the core imports neither framework).
* :class:`CachedEmbedder`: a disk cache for fit/evaluate runs.

Example:
    >>> from shared_core.embeddings import default_embedder
    >>> emb = default_embedder()
    >>> emb.embed(["What is 2 + 2?"]).shape
    (1, 256)
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from shared_core._errors import ConfigurationError, MissingDependencyError

DEFAULT_EMBEDDER_ID = "wordllama-l2-supercat-256"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. ``id`` names the embedding space and is stored in router files."""

    @property
    def id(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed a batch of texts -> ``float32`` array of shape ``(len(texts), dim)``."""
        ...


def _wordllama_files(name: str = "l2_supercat", dim: int = 256) -> tuple[Path, Path]:
    # Locate the wheel's files without importing it (its import configures root logging).
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("wordllama", "default")
    root = Path(next(iter(spec.submodule_search_locations)))
    weights = root / "weights" / f"{name}_{dim}.safetensors"
    tokenizer = root / "tokenizers" / f"{name}_tokenizer_config.json"
    for f in (weights, tokenizer):
        if not f.exists():
            raise ConfigurationError(f"the wordllama wheel has no {f.name} (looked in {f.parent})")
    return weights, tokenizer


class StaticEmbedder:
    """Mean-pooled static token embeddings from the ``wordllama`` wheel; fully offline.

    The table and tokenizer are loaded on the first ``embed`` call, not at construction.

    Example:
        >>> emb = StaticEmbedder()
        >>> v = emb.embed(["hello world", "bonjour"])
        >>> v.shape, v.dtype
        ((2, 256), dtype('float32'))
    """

    def __init__(self, name: str = "l2_supercat", dim: int = 256, max_tokens: int = 512) -> None:
        self.name = name
        self.dim = dim
        self.max_tokens = max_tokens
        self._table: np.ndarray | None = None
        self._tokenizer: Any = None

    @property
    def id(self) -> str:
        return f"wordllama-{self.name.replace('_', '-')}-{self.dim}"

    def __repr__(self) -> str:
        return f"StaticEmbedder(name={self.name!r}, dim={self.dim})"

    def _load(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        weights, tok = _wordllama_files(self.name, self.dim)
        self._table = np.ascontiguousarray(load_file(str(weights))["embedding.weight"], np.float32)
        tokenizer = Tokenizer.from_file(str(tok))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tokenizer = tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._table is None:
            self._load()
        table = self._table
        assert table is not None
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 1:  # the routing hot path: no batch bookkeeping
            ids = self._tokenizer.encode(texts[0], add_special_tokens=False).ids[: self.max_tokens]
            if not ids:
                return np.zeros((1, table.shape[1]), np.float32)
            return table[ids].mean(axis=0, keepdims=True)
        encs = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        from scipy.sparse import csr_matrix

        lists = [np.asarray(e.ids[: self.max_tokens], dtype=np.int64) for e in encs]
        lengths = np.fromiter((x.size for x in lists), np.int64, len(lists))
        flat = np.concatenate(lists) if lists else np.zeros(0, np.int64)
        # mean pooling as one sparse (texts x vocabulary) product: no (tokens x dim) copy
        weights = np.repeat(1.0 / np.maximum(lengths, 1), lengths).astype(np.float32)
        indptr = np.concatenate(([0], np.cumsum(lengths)))
        pool = csr_matrix((weights, flat, indptr), shape=(len(lists), table.shape[0]))
        return np.asarray(pool @ table, dtype=np.float32)


class OpenAICompatibleEmbedder:
    """Embeddings from any OpenAI-compatible ``/embeddings`` endpoint (needs the ``openai`` extra).

    Example:
        >>> emb = OpenAICompatibleEmbedder("Qwen/Qwen3-Embedding-8B",
        ...                                base_url="http://localhost:8000/v1")  # doctest: +SKIP
        >>> emb.embed(["hi"]).shape  # doctest: +SKIP
        (1, 4096)
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 128,
        dimensions: int | None = None,
    ) -> None:
        from pydantic import SecretStr

        self.model = model
        self.base_url = base_url
        self._api_key = SecretStr(api_key) if api_key else None
        self.batch_size = batch_size
        self.dimensions = dimensions
        self._client: Any = None

    @property
    def id(self) -> str:
        dims = f"-{self.dimensions}" if self.dimensions else ""
        return f"openai-compatible:{self.model}{dims}"

    def __repr__(self) -> str:
        return f"OpenAICompatibleEmbedder(model={self.model!r}, base_url={self.base_url!r})"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._client is None:
            try:
                import openai
            except ImportError as e:
                raise MissingDependencyError("openai", "openai") from e
            key = self._api_key.get_secret_value() if self._api_key else None
            if key is None and not os.environ.get("OPENAI_API_KEY") and self.base_url is None:
                from shared_core._errors import MissingAPIKeyError

                raise MissingAPIKeyError("openai", ["OPENAI_API_KEY"])
            self._client = openai.OpenAI(
                api_key=key or os.environ.get("OPENAI_API_KEY") or "none", base_url=self.base_url
            )
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            kwargs: dict[str, Any] = {
                "model": self.model,
                "input": list(texts[i : i + self.batch_size]),
            }
            if self.dimensions:
                kwargs["dimensions"] = self.dimensions
            resp = self._client.embeddings.create(**kwargs)
            out.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
        return np.asarray(out, dtype=np.float32)


class _CallableEmbedder:
    def __init__(self, fn: Callable[[list[str]], Any], id: str) -> None:
        self._fn = fn
        self._id = id

    @property
    def id(self) -> str:
        return self._id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self._id!r})"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._fn(list(texts)), dtype=np.float32)


def _model_id(obj: Any) -> str:
    name = getattr(obj, "model_name", None) or getattr(obj, "model", None) or ""
    return f"{type(obj).__name__}:{name}" if name else type(obj).__name__


class LangChainEmbedder(_CallableEmbedder):
    """Any LangChain ``Embeddings`` (its ``embed_documents``) as an :class:`Embedder`.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> emb = LangChainEmbedder(DeterministicFakeEmbedding(size=8))
        >>> emb.embed(["a"]).shape
        (1, 8)
    """

    def __init__(self, embeddings: Any, id: str | None = None) -> None:
        super().__init__(embeddings.embed_documents, id or f"langchain:{_model_id(embeddings)}")


class LlamaIndexEmbedder(_CallableEmbedder):
    """Any LlamaIndex embedding model (its ``get_text_embedding_batch``) as an :class:`Embedder`.

    Example:
        >>> from llama_index.core.embeddings import MockEmbedding
        >>> LlamaIndexEmbedder(MockEmbedding(embed_dim=8)).embed(["a"]).shape
        (1, 8)
    """

    def __init__(self, embed_model: Any, id: str | None = None) -> None:
        super().__init__(
            embed_model.get_text_embedding_batch, id or f"llamaindex:{_model_id(embed_model)}"
        )


def default_cache_dir() -> Path:
    """``$AVENGERS_CACHE_DIR``, else ``$XDG_CACHE_HOME/avengers-router``, else ``~/.cache/...``."""
    if os.environ.get("AVENGERS_CACHE_DIR"):
        return Path(os.environ["AVENGERS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "avengers-router"


class CachedEmbedder:
    """Caches whole batches on disk, keyed by embedder id and the texts' hash.

    Meant for fit / evaluate runs that embed the same corpus again and again; for the single-query
    hot path call the wrapped embedder directly. Long batches show a progress bar.

    Example:
        >>> import tempfile
        >>> emb = CachedEmbedder(default_embedder(), cache_dir=tempfile.mkdtemp())
        >>> emb.embed(["a", "b"]).shape
        (2, 256)
    """

    def __init__(
        self,
        embedder: Embedder,
        cache_dir: str | Path | None = None,
        batch_size: int = 256,
        progress: bool | None = None,
    ) -> None:
        self.embedder = embedder
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir() / "embeddings"
        self.batch_size = batch_size
        self.progress = progress

    @property
    def id(self) -> str:
        return self.embedder.id

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.embedder!r}, cache_dir={str(self.cache_dir)!r})"

    def _path(self, texts: Sequence[str]) -> Path:
        h = hashlib.sha256(self.id.encode())
        for t in texts:
            h.update(hashlib.sha256(t.encode("utf-8")).digest())
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.id)
        return self.cache_dir / safe / f"{h.hexdigest()[:32]}.npy"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        path = self._path(texts)
        if path.exists():
            try:
                cached = np.load(path, allow_pickle=False)
                if cached.shape[0] == len(texts):
                    return cached
            except (OSError, ValueError):
                pass  # unreadable cache entry: recompute and overwrite
        show = self.progress if self.progress is not None else len(texts) > 20 * self.batch_size
        parts = [
            self.embedder.embed(texts[i : i + self.batch_size])
            for i in tqdm(
                range(0, len(texts), self.batch_size),
                desc="embedding",
                unit="batch",
                disable=not show,
            )
        ]
        out = np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, out)
        os.replace(tmp, path)
        return out


def default_embedder() -> StaticEmbedder:
    """The offline default embedder (see :class:`StaticEmbedder`)."""
    return StaticEmbedder()


def get_embedder(name: str) -> Embedder:
    """Build an embedder from a name: ``wordllama`` / ``default`` / a StaticEmbedder id,
    or ``openai-compatible:<model>`` (reads ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``).
    """
    if name in ("default", "wordllama", DEFAULT_EMBEDDER_ID):
        return StaticEmbedder()
    if name.startswith("wordllama-"):
        *words, dim = name[len("wordllama-") :].split("-")
        if dim.isdigit():
            return StaticEmbedder("_".join(words), int(dim))
    if name.startswith("openai-compatible:"):
        return OpenAICompatibleEmbedder(name.split(":", 1)[1])
    raise ConfigurationError(
        f"unknown embedder {name!r}; known: 'wordllama' (default, {DEFAULT_EMBEDDER_ID}), "
        "'openai-compatible:<model>'; or pass an Embedder object"
    )
