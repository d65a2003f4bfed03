"""Let a stage package double as its API function: `booktune.train(...)` and `booktune.train.recipe` both work.

Importing a submodule such as `booktune.train.recipe` binds `booktune.train` to the package, which would shadow an
API function of the same name. Giving the package a module class with `__call__` keeps both spellings.
"""

from __future__ import annotations

import importlib
import sys
import types


def make_callable(module_name: str, target: str) -> None:
    """Make `sys.modules[module_name](...)` call `target` ('package.module:function'), imported on first call."""
    path, func = target.split(":")

    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(importlib.import_module(path), func)(*args, **kwargs)

    sys.modules[module_name].__class__ = CallableModule
