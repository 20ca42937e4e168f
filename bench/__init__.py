"""gridbot's benchmark suite: ``python -m bench`` (all) or ``python -m bench NAME`` (one).

Not part of the test suite: it needs a Redis on loopback and minutes of wall time. See
``docs/draft-performance.md`` for what each figure means.
"""
