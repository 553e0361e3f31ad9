"""MemFlow benchmarks: the workloads of ``shared/BENCHMARKS.md`` and a few extra ones.

Run from the repository root::

    python -m benchmarks all                 # W1, W2, W3, W4 and the commit floor
    python -m benchmarks all --extended      # ... plus timers, long and rss
    python -m benchmarks W1 --n 300          # one workload; --n overrides its N

Each workload prints one JSON line. Workloads use only the public ``memflow`` API; raw
``psycopg`` is used here (and only here) to read ``pg_stat_database``, to measure the commit
floor, to see when workflows are waiting and to drop each workload's schema afterwards.
See ``docs/benchmarks.md``.
"""
