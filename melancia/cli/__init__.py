"""The ``melancia`` command (the console script ``melancia.cli:app``). This module builds the typer app:
the root options (``--version``), the life-cycle commands of :mod:`melancia.cli.pipeline` and the command
groups ``data``, ``index``, ``serve`` and ``keys`` from their own modules. Every command parses its options
and calls one library function, imported inside the command so that ``melancia --help`` stays fast."""

from __future__ import annotations

from typing import Annotated

import typer

from melancia import __version__
from melancia.cli.common import out, quiet_libraries
from melancia.cli.data import data_app
from melancia.cli.index import index_app
from melancia.cli.pipeline import ask, eval_, operator, promote, run, train
from melancia.cli.serve import keys_app, serve_app

app = typer.Typer(help="MelancIA: fine-tune, evaluate and serve a Retail Media Ads assistant.",
                  no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)
app.add_typer(data_app, name="data")
app.add_typer(index_app, name="index")
app.add_typer(serve_app, name="serve")
app.add_typer(keys_app, name="keys")
app.command()(run)
app.command()(train)
app.command()(ask)
app.command()(operator)
app.command("eval")(eval_)
app.command()(promote)


def _version(value: bool) -> None:
    if value:
        out.print(f"melancia {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """MelancIA command line."""
    quiet_libraries()
