"""One module per hostile engine: the planted base engine with one hostile change.

These modules are loaded only by engine hosts, never imported by gradcert's own
test run (``tests/hostile/conftest.py`` keeps pytest's doctest collection out):
importing some of them ends the process.
"""
