"""booktune's version, recorded in every DATA and RUN folder it writes."""

__version__ = "0.2.0"
