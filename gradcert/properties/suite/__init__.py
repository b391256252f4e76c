"""The conformance suite: one pytest module per level (ops, graphs, semantics,
robustness, optimizer, models). A test ``test_<name>`` in ``<level>.py``
checks property ``<level>.<name>`` (see :mod:`gradcert.properties.registry`).

The modules are not named ``test_*.py``: ``gradcert certify`` runs them with
its own pytest configuration, and gradcert's own test run does not collect
them.
"""

from pathlib import Path

from gradcert.results import LEVELS

SUITE_DIR = Path(__file__).resolve().parent
LEVEL_FILES = [SUITE_DIR / f"{level}.py" for level in LEVELS]
