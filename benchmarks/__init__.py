"""The benchmark suite: our server and its peers under the same load (``python -m benchmarks``).

See docs/benchmarks.md for what is measured and how; ``make bench-quick`` / ``make bench``.
"""
