"""Chunking, formatting and writing the training data (the `prepare` stage)."""

from booktune.dataset.io import DataError, load_conversations, load_stats
from booktune.dataset.prepare import PrepareError, PrepareResult, prepare_data

__all__ = ["DataError", "PrepareError", "PrepareResult", "load_conversations", "load_stats", "prepare_data"]
