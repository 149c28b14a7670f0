"""Benchmarks and load tools (not installed with the package; run from a checkout): ``python -m benchmarks NAME|all``
prints markdown tables and writes JSON and charts (BENCHMARKS.md holds the figures); ``python -m benchmarks.carry``
packs data for a lent GPU."""
