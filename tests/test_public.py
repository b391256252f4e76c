"""gradcert's public surface: ``__all__``, lazy names, and a cheap ``import gradcert``."""

import importlib
import subprocess
import sys

import pytest

import gradcert

HEAVY = ("mpmath", "gmpy2", "hypothesis", "torch", "jax", "numpy", "rich")


def test_import_gradcert_loads_nothing_heavy():
    code = ("import sys, gradcert; "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{HEAVY!r} or m.startswith('gradcert.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [], f"import gradcert loaded {out}"


@pytest.mark.parametrize("name", gradcert.__all__)
def test_every_public_name_resolves_to_its_definition(name):
    value = getattr(gradcert, name)
    module = importlib.import_module(gradcert._WHERE[name])
    assert value is getattr(module, name)
    assert callable(value)
    assert name in dir(gradcert)


def test_certify_is_the_function_even_after_its_module_is_imported():
    importlib.import_module("gradcert.certify")
    assert callable(gradcert.certify) and not isinstance(gradcert.certify, type(sys))
    assert gradcert.certify is sys.modules["gradcert.certify"].certify


def test_an_unknown_name_is_a_clear_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'chek_grads'"):
        gradcert.chek_grads  # noqa: B018


def test_the_export_check_catches_a_mismatch(monkeypatch):
    monkeypatch.setattr(gradcert, "__all__", [*gradcert.__all__, "extra"])
    with pytest.raises(ImportError, match="extra"):
        gradcert._check_exports()


def test_the_pytest_plugin_stays_lazy():
    code = ("import sys, gradcert.pytest_plugin; "
            f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
            "or m.startswith(('gradcert.check', 'gradcert.oracle')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [], f"the plugin loaded {out}"


def test_the_framework_tracers_import_without_their_framework():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['jax'] = None\n"
            "import gradcert.check.torch_trace as t, gradcert.check.jax_trace as j\n"
            "from gradcert.check import CheckError\n"
            "for m in (t, j):\n"
            "    try:\n"
            "        m.trace(lambda x: x, [1.0])\n"
            "    except CheckError as e:\n"
            "        print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.splitlines() == ["PyTorch is not installed", "JAX is not installed"]
