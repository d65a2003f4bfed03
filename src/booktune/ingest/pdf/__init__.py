"""PDF books: text layer in, clean prose out (see extract.py for the pipeline, docs/extraction.md for the rules)."""

from booktune.ingest.pdf.extract import PageReport, explain_pdf, extract_pdf

__all__ = ["PageReport", "explain_pdf", "extract_pdf"]
