"""``python -m melancia.cli``: the ``melancia`` command run as a module (the local pipeline starts the
predictor this way, with the interpreter that runs it)."""

import sys

from melancia.cli import app

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
