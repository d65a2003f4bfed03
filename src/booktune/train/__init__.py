"""The train stage: a LoRA adapter from a prepared DATA folder (see recipe.py).

Callable: `booktune.train(data, out, ...)` is the API function `booktune.api.train`.
"""

from booktune.callable_module import make_callable

make_callable(__name__, "booktune.api:train")
