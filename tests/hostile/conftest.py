"""Keep pytest (its doctest collection) from importing the hostile engines: some end the
process that imports them. Only engine hosts load them."""

collect_ignore_glob = ["engines/*.py"]
