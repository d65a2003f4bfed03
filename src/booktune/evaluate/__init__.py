"""The evaluate stage: held-out loss and sample continuations."""
