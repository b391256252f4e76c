"""Hypothesis strategies and the conformance properties gradcert checks engines with.

Importing this package is cheap: hypothesis loads only with
:mod:`gradcert.properties.strategies`.
"""
