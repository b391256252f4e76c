"""The README's examples run as written."""

import doctest
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_examples():
    result = doctest.testfile(str(README), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8, "the README's examples were not found"
    assert result.failed == 0


def test_readme_commands_are_what_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    for command in ('pip install . && gradcert certify',
                    'pip install -e ".[test]" && python -m pytest'):
        assert f"```\n{command}\n```" in README.read_text()
        assert f"\n{command}\n" in ci


def test_the_readme_links_the_ci_guide():
    assert "(docs/ci.md)" in README.read_text()
