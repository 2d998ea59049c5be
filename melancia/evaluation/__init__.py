"""Evaluation: metrics, runner, reports and the promotion gate."""
