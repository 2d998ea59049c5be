"""``python -m melancia.jobs.index``: what an indexing Job's container runs.

Updates (or, with ``--rebuild``, rebuilds) the knowledge index from ``--docs`` / ``MELANCIA_DOCS``
into ``--dir`` / ``MELANCIA_HOME/index``, with the dense part on ``MELANCIA_CHROMA_URL`` when set.
Prints a JSON summary as the last line; on failure exits 1 with a one-line reason (also in
``/dev/termination-log`` when it exists). ``--wait-for-chroma`` waits for the Chroma server first: the
predictor chart runs this as an init container, which may start before the Chroma pod is ready.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from melancia.errors import write_termination_log
from melancia.retrieval.index import KnowledgeIndex
from melancia.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m melancia.jobs.index", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", default=os.environ.get("MELANCIA_DOCS", "data/corpus"))
    parser.add_argument("--dir", default=None, help="index folder (default MELANCIA_HOME/index)")
    parser.add_argument("--rebuild", action="store_true", help="index from scratch instead of updating")
    parser.add_argument("--wait-for-chroma", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long for the Chroma server to answer first (an init container "
                             "may start before Chroma is ready)")
    args = parser.parse_args(argv)
    try:
        index = KnowledgeIndex(Path(args.dir) if args.dir else None, chroma_url=get_settings().chroma_url)
        index.wait_for_server(args.wait_for_chroma)
        summary = (index.build if args.rebuild else index.update)(Path(args.docs))
    except Exception as exc:  # the Job's one-line reason
        from melancia.jobs.train import report_failure  # heavy (torch): only on failure

        print(f"indexing failed: {report_failure(exc)}", file=sys.stderr, flush=True)
        return 1
    result = {"added": summary.added, "changed": summary.changed, "removed": summary.removed,
              "unchanged": len(summary.unchanged), "chunks": summary.chunks}
    line = json.dumps(result, ensure_ascii=False)
    print(line, flush=True)
    write_termination_log(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
