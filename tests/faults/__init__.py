"""The fault matrix of issue 16: each fault injected for real on the lab (see matrix.py)."""
