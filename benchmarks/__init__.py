"""Benchmarks and load tools (not installed with the package; run from a checkout): ``python -m benchmarks NAME|all``
prints markdown tables and writes JSON and charts; ``python -m benchmarks.carry`` packs data for a lent GPU;
``python -m benchmarks.soak webcam|gradio`` runs soak/load checks on 127.0.0.1."""
