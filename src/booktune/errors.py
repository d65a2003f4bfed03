"""Errors a user can fix. The CLI prints them as one line, never as a traceback."""

from __future__ import annotations


def user_errors() -> tuple[type[BaseException], ...]:
    """Every exception class that means bad input or settings (imported lazily: the CLI must start fast)."""
    from booktune.chat.masking import MaskingError
    from booktune.chat.render import TemplateError
    from booktune.config import ConfigError
    from booktune.dataset.format import PromptError
    from booktune.dataset.io import DataError
    from booktune.dataset.prepare import PrepareError
    from booktune.dataset.tokenize import TruncationError
    from booktune.ingest.types import BookError
    from booktune.model import ModelError
    from booktune.train.artifacts import RunError
    from booktune.train.recipe import TrainError
    from booktune.train.distributed import DistributedError
    from booktune.plan import PlanError
    from booktune.train.backends import BackendError

    return (BookError, ConfigError, DataError, PrepareError, PromptError, TruncationError, MaskingError,
            TemplateError, ModelError, RunError, TrainError, DistributedError, PlanError, BackendError)
