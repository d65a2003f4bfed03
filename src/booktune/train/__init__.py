"""The train stage: a LoRA adapter from a prepared DATA folder (see recipe.py)."""
