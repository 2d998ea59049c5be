"""Serving: the KServe custom predictor that wraps the router.

``kserve`` parses ``sys.argv`` with its own argparse parser when it is imported, and argparse
abbreviations make our options collide with its options (``--config`` is read as
``--configure_logging``). It is imported here first with the program name only, so every module of
this package gets a cleanly configured SDK whatever command line started the process.
"""

import sys

_argv = sys.argv
sys.argv = _argv[:1]
try:
    import kserve  # noqa: F401
finally:
    sys.argv = _argv
