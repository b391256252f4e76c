"""Doctest collection imports every module: skip those whose framework is not installed."""

import importlib.util

collect_ignore = [module for module, framework in (("torch_fns.py", "torch"),
                                                   ("jax_fns.py", "jax"))
                  if importlib.util.find_spec(framework) is None]
