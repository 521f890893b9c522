"""Sentiment of every user turn (negative/neutral/positive and a score in [-1, 1]).

`load_model(SentimentConfig(...))` gives a model with a batched `predict(texts)`; `SentimentService` runs it off
the event loop for the gateway. Our model is MiniLM embeddings + a head trained on `data/train.csv`
(`training.ensure_head`); any Hugging Face sequence-classification directory can replace it.
"""

from assistant.sentiment.model import (
    LABELS,
    Sentiment,
    SentimentConfig,
    SentimentModel,
    SentimentUnavailable,
    load_model,
)
from assistant.sentiment.service import SentimentService
from assistant.sentiment.training import ensure_head

__all__ = [
    "LABELS",
    "Sentiment",
    "SentimentConfig",
    "SentimentModel",
    "SentimentService",
    "SentimentUnavailable",
    "ensure_head",
    "load_model",
]
