"""A catalogue of users' own functions, each correct and with one realistic bug.

``torch_fns`` holds custom ``torch.autograd.Function``s, ``jax_fns`` JAX
``custom_vjp`` rules. Each entry of a module's ``CATALOGUE`` is ``(name,
correct, buggy, inputs, search)``: ``inputs()`` builds the arguments, and
``search`` says whether the bug shows only away from them (found by
check_grads' input search) or already at them. check_grads must pass every
correct one and fail every buggy one; the tests in tests/test_check_torch.py
and tests/test_check_jax.py do so.
"""
