"""What a question writer returns, and what the model writer needs to run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Question:
    text: str
    score: int | None = None  # 1-5 from the writing model's self-curation; None where nothing scores


@dataclass
class Written:
    """Each passage id's kept questions, and what was written, kept and dropped."""

    writer: str
    questions: dict[str, list[Question]] = field(default_factory=dict)
    written: int = 0
    dropped: int = 0
    cached: int = 0  # of those written, how many came from DATA's cache

    def counts(self) -> dict[str, Any]:
        kept = sum(len(q) for q in self.questions.values())
        return {"writer": self.writer, "written": self.written, "kept": kept, "dropped": self.dropped,
                "cached": self.cached}


@dataclass
class Context:
    """What the model writer needs beyond the passages: the model to use, and DATA (an OutputDir) for its cache."""

    model: str | None = None
    trust_remote_code: bool = False
    folder: Any = None
