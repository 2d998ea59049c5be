"""``melancia serve`` and ``melancia keys``: start the API gateway (the group's default) or the KServe
predictor (``serve predictor``), and create, list and revoke the gateway's API keys. The web servers, the
predictor and the key store are imported inside the commands, so ``melancia --help`` stays fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from melancia.cli.common import RouterConfigOption, SetOption, console, out, user_errors

serve_app = typer.Typer(help="Serve the API gateway (default) or the KServe predictor (`serve predictor`).")
keys_app = typer.Typer(help="Create, list and revoke API keys (only salted hashes are stored).", no_args_is_help=True)


@serve_app.callback(invoke_without_command=True)
@user_errors
def serve_api(ctx: typer.Context,
              host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
              port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
              predictor_url: Annotated[str | None, typer.Option(
                  help="Answer through this KServe predictor (default: MELANCIA_API_PREDICTOR_URL, else the "
                       "router in process).")] = None) -> None:
    """Serve the REST API, OpenAI-compatible chat and the chat page (settings: MELANCIA_API_*)."""
    if ctx.invoked_subcommand is not None:
        return
    from melancia.api.app import create_app
    from melancia.api.config import APISettings
    from melancia.api.server import serve_api as serve

    settings = APISettings(**({"predictor_url": predictor_url} if predictor_url else {}))
    out.print(f"MelancIA API on http://{host}:{port} (chat page at /, docs at /docs)")
    raise typer.Exit(serve(create_app(settings), host=host, port=port, grace_period_s=settings.grace_period_s))


@serve_app.command("predictor")
@user_errors
def serve_predictor(config: RouterConfigOption = Path("configs/router.yaml"), set_: SetOption = None,
                    port: Annotated[int, typer.Option(help="HTTP port.")] = 8080,
                    reload_interval: Annotated[float, typer.Option(
                        help="Seconds between checks of the registry alias (0: reload only on request).")] = 0.0) -> None:
    """Start the KServe predictor (v1/v2 protocol and OpenAI chat completions) over the router."""
    from melancia.serving.server import serve_predictor as serve

    raise typer.Exit(serve(config, set_, port=port, reload_interval_s=reload_interval))


@keys_app.command("create")
@user_errors
def keys_create(name: Annotated[str, typer.Argument(help="A name for the key (unique).")],
                tier: Annotated[str, typer.Option(help="Tier of every request made with the key.")] = "free",
                scope: Annotated[list[str] | None, typer.Option(help="user (default) or admin; repeatable.")] = None) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    from melancia.api.config import APISettings
    from melancia.api.store import Store

    key, plaintext = Store(APISettings().database_url).create_key(name, tier, scope or ["user"])
    console.print(f"created key {key.name!r} (tier {key.tier}, scopes {', '.join(key.scopes)}); "
                  "store it now, it is not shown again:", highlight=False)
    out.print(plaintext, highlight=False)


@keys_app.command("list")
@user_errors
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (names, tiers, scopes, dates; never secrets)."""
    from rich.table import Table

    from melancia.api.config import APISettings
    from melancia.api.store import Store

    keys = [k.as_dict() for k in Store(APISettings().database_url).list_keys()]
    if as_json:
        out.print_json(json.dumps(keys))
        return
    table = Table("name", "id", "tier", "scopes", "created", "last used", "revoked")
    for k in keys:
        table.add_row(k["name"], k["id"], k["tier"], ",".join(k["scopes"]), str(k["created_at"])[:19],
                      str(k["last_used_at"] or "")[:19], str(k["revoked_at"] or "")[:19])
    out.print(table)


@keys_app.command("revoke")
@user_errors
def keys_revoke(name: Annotated[str, typer.Argument(help="Name or id of the key.")]) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from melancia.api.config import APISettings
    from melancia.api.store import Store

    key = Store(APISettings().database_url).revoke_key(name)
    out.print(f"revoked key {key.name!r} ({key.id})", highlight=False)
