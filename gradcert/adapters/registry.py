"""Finding an adapter from what the user typed: built-in names, ``module:attr``,
and third-party adapters registered in the ``gradcert.adapters`` entry-point group.

A third-party package registers its adapter in its ``pyproject.toml``::

    [project.entry-points."gradcert.adapters"]
    myengine = "myengine.gradcert_adapter:MyAdapter"

The entry point may name an :class:`~gradcert.adapters.base.Adapter`
instance or subclass, or a micrograd-style Value class.

>>> load_target(None).name
'gradcert'
>>> load_target("gradcert.engine:Value").import_line
'from gradcert.engine import Value'
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

from gradcert.adapters.base import Adapter, TargetError
from gradcert.adapters.generic import GenericAdapter, _import_line, check_value_class

__all__ = ["BUILTINS", "ENTRY_POINT_GROUP", "load_target"]

ENTRY_POINT_GROUP = "gradcert.adapters"

BUILTINS: dict[str, str] = {
    "gradcert": "gradcert.adapters.reference:ReferenceAdapter",
    "micrograd": "gradcert.adapters.micrograd:MicrogradAdapter",
    "torch": "gradcert.adapters.torch:TorchAdapter",
    "jax": "gradcert.adapters.jax:JaxAdapter",
    "autograd": "gradcert.adapters.autograd:AutogradAdapter",
}
"""Built-in adapter names -> the class, imported only when asked for."""

_EXPECTED = ("expected an Adapter (instance or subclass), or a Value class constructible "
             "from a float with .data, .grad and .backward()")


def load_target(target: Any = None) -> Adapter:
    """The adapter for ``target``; :class:`TargetError` with a clear message if unusable.

    ``target`` is None (gradcert's engine), a built-in name (see
    :data:`BUILTINS`), a name registered in the ``gradcert.adapters``
    entry-point group, ``"module:attr"`` naming an Adapter or a Value class,
    or an Adapter.

    >>> load_target("nosuchengine")
    Traceback (most recent call last):
    ...
    gradcert.adapters.base.TargetError: 'nosuchengine' is not a built-in adapter (...
    """
    if target is None:
        target = "gradcert"
    if isinstance(target, Adapter):
        return target
    if not isinstance(target, str) or not target.strip():
        raise TargetError(f"target {target!r}: expected a name such as 'torch' or "
                          f"'module:attr'")
    target = target.strip()
    if target in BUILTINS:
        module, attr = BUILTINS[target].split(":")
        return _adapter(getattr(importlib.import_module(module), attr), target, "")
    if ":" in target:
        return _from_module(target)
    ep = _entry_points().get(target)
    if ep is not None:
        try:
            obj = ep.load()
        except Exception as e:
            raise TargetError(f"{target}: the entry point {ep.value!r} of group "
                              f"{ENTRY_POINT_GROUP!r} failed to load: "
                              f"{type(e).__name__}: {e}") from None
        module, _, attr = ep.value.partition(":")
        return _adapter(obj, target, _import_line(module.strip(), attr.strip()) if attr else "")
    registered = ", ".join(sorted(_entry_points())) or "none installed"
    hint = (f"to name a Value class or an Adapter in a module, use module:attr, "
            f"e.g. '{target}:Value'" if "." in target or target.isidentifier()
            else "use a built-in name or module:attr")
    raise TargetError(f"{target!r} is not a built-in adapter ({', '.join(sorted(BUILTINS))}) "
                      f"nor a registered {ENTRY_POINT_GROUP!r} entry point ({registered}); {hint}")


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _from_module(target: str) -> Adapter:
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise TargetError(f"{target!r}: expected module:attr, e.g. 'mypkg.engine:Value'")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise TargetError(f"{target}: cannot import module {module!r} "
                          f"({type(e).__name__}: {e})") from None
    except Exception as e:
        raise TargetError(f"{target}: importing module {module!r} raised "
                          f"{type(e).__name__}: {e}") from None
    for i, part in enumerate(attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            where = ".".join([module, *attr.split(".")[:i]])
            raise TargetError(f"{target}: {where!r} has no attribute {part!r}; "
                              f"{_EXPECTED}") from None
    return _adapter(obj, target, _import_line(module, attr))


def _adapter(obj: Any, target: str, import_line: str) -> Adapter:
    if isinstance(obj, Adapter):
        adapter = obj
    elif isinstance(obj, type) and issubclass(obj, Adapter):
        try:
            adapter = obj()
        except TargetError:
            raise
        except Exception as e:
            raise TargetError(f"{target}: creating the adapter {obj.__name__}() raised "
                              f"{type(e).__name__}: {e}") from None
    else:
        check_value_class(obj, target)
        name = target.partition(":")[0].split(".")[0] if ":" in target else target
        return GenericAdapter(obj, target=target, import_line=import_line, name=name)
    if not adapter.target:
        adapter.target = target
    return adapter
