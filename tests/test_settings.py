"""One settings table: certify's flags, the plugin's options and the environment
variables all come from gradcert.settings, parsed by its rows."""

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from gradcert import settings
from gradcert.cli import _parser
from gradcert.properties.runner import PROFILES
from gradcert.settings import SETTINGS, SettingError, from_environ, resolve


def test_the_profile_names_are_the_runners_profiles():
    assert tuple(PROFILES) == settings.PROFILES


def test_every_row_is_a_certify_flag_and_a_plugin_option():
    cert = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    flags = {o for a in cert.choices["certify"]._actions for o in a.option_strings}
    dests = {a.dest for a in cert.choices["certify"]._actions}
    group = {}

    class Group:
        def addoption(self, *names, **kw):
            group[names[0]] = kw

    class Parser:
        def getgroup(self, *a):
            return Group()

    from gradcert.pytest_plugin import pytest_addoption

    pytest_addoption(Parser())
    for s in SETTINGS.values():
        assert s.name in dests and (s.flag is None or s.flag in flags)
        assert group[s.option]["dest"] == s.dest and s.env in group[s.option]["help"]
    assert set(group) == {s.option for s in SETTINGS.values()}


def test_a_flag_wins_over_the_environment_which_wins_over_the_default():
    env = {"GRADCERT_SEED": "3", "GRADCERT_PROFILE": "ci"}
    assert resolve({"seed": "5"}, env)["seed"] == 5
    assert resolve({}, env)["seed"] == 3 and resolve({}, env)["profile"] == "ci"
    assert resolve({}, {})["seed"] is None and resolve({}, {})["profile"] == "quick"
    assert from_environ({"GRADCERT_JOBS": ""}) == {}  # empty is unset


@pytest.mark.parametrize("given_, env, says", [
    ({"profile": "fast"}, {}, "--profile: unknown profile 'fast'; known: quick, ci, thorough"),
    ({}, {"GRADCERT_SEED": "-1"}, "GRADCERT_SEED: the seed must be an integer, 0 or more"),
    ({"jobs": "two"}, {}, "--jobs: -j must be an integer"),
    ({"example_timeout": "0"}, {}, "--example-timeout: must be a positive number of seconds"),
    ({}, {"GRADCERT_EXAMPLE_TIMEOUT": "nan"}, "GRADCERT_EXAMPLE_TIMEOUT: must be a positive"),
])
def test_a_bad_value_names_its_setting_and_where_it_came_from(given_, env, says):
    with pytest.raises(SettingError) as e:
        resolve(given_, env)
    assert str(e.value).startswith(says)


def test_the_plugin_names_its_options():
    with pytest.raises(SettingError, match="^--gradcert-seed: "):
        resolve({"seed": "x"}, {}, style="pytest")


@given(hs.integers(0, 2**64))
def test_counts_read_back_as_written(n):
    assert resolve({"seed": str(n), "jobs": n}, {})["seed"] == n


@given(hs.text())
def test_any_text_is_a_count_or_a_setting_error(text):
    try:
        n = resolve({"seed": text}, {})["seed"]
    except SettingError as e:
        assert str(e).startswith("--seed: ")
    else:
        assert n == int(text) and n >= 0
