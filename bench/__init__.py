"""rnnkit vs PyTorch on the CPU: ``python -m bench`` (see bench/run.py for the method)."""
