"""Serving: the KServe custom predictor that wraps the router.

Importing this package imports no KServe: :mod:`melancia.serving.predictor` (the ``kserve.Model``)
and :mod:`melancia.serving.server` load the SDK when they are used.
"""
