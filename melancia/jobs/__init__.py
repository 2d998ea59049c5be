"""Entry points that Kubernetes Job containers run (``python -m melancia.jobs.<name>``).

Each prints one JSON line (or a one-line reason) and leaves the same line in the termination log
(:func:`melancia.errors.write_termination_log`).
"""
