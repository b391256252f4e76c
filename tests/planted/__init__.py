"""The planted-bug catalogue: micrograd-style engines, each correct or with one defect.

:mod:`.catalogue` lists them with the conformance properties each must fail.
"""
