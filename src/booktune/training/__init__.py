"""The training stage: a LoRA adapter from a prepared DATA folder.

recipe.py reads top to bottom (data -> trainer -> loop -> artifacts) and `recipe.build_trainer` is the one place a
trainer is made. backends/ holds the training libraries (one file each), memory.py and memory_split.py the memory
plan, scaleout.py and launch.py the multi-GPU choices, packing.py / varlen.py / balance.py the batches.
"""
