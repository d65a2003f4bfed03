"""The run report: RUN/report.html (self-contained, offline) and RUN/report.md, from RUN/booktune.json and DATA."""

from booktune.report.write import write_report

__all__ = ["write_report"]
