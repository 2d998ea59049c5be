"""``python -m localcluster up|down|status|env|images [TAG]`` (run by scripts/local-cluster.sh)."""

from __future__ import annotations

import argparse
import sys

from localcluster import cluster, images
from localcluster.config import ClusterConfig
from localcluster.processes import ClusterError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local-cluster.sh", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the one-node cluster (idempotent)")
    commands.add_parser("down", help="stop it and remove everything up made")
    commands.add_parser("status", help="daemons, nodes and addons; exit 1 unless all are up")
    commands.add_parser("env", help="shell exports for kubectl, helm and docker: eval \"$(... env)\"")
    build = commands.add_parser("images", help="build the project's images and push them to the cluster's registry")
    build.add_argument("tag", nargs="?", default="dev")
    build.add_argument("--only", nargs="*", choices=images.PROJECT_IMAGES, help="a subset of the images")
    args = parser.parse_args(argv)
    config = ClusterConfig()
    try:
        if args.command == "up":
            cluster.up(config)
        elif args.command == "down":
            cluster.down(config)
        elif args.command == "status":
            return cluster.status(config)
        elif args.command == "env":
            print("\n".join(f"export {key}={value!r}".replace("'", '"') for key, value in config.env().items()))
        elif args.command == "images":
            built = images.project_images(config, args.tag, tuple(args.only or images.PROJECT_IMAGES))
            for b in built:
                print(f"{b.image:50} {b.seconds:7.0f} s {b.size_bytes / 1e9:6.2f} GB")
    except (ClusterError, FileNotFoundError) as error:
        print(f"local-cluster: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
