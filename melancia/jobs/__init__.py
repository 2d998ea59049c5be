"""Entry points that Kubernetes Job containers run (``python -m melancia.jobs.<name>``)."""
