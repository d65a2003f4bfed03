"""The evaluation stage: held-out loss and bits per byte (loss.py), base and tuned continuations of the same
prompts (compare.py), the voice distance to the author (voice.py), and where the scoring model lives
(placement.py); heldout.py strings them together for `booktune run`."""
