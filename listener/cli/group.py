"""The `listener` command group: its global `--config` (before or after the command), and our own
errors turned into one-line messages with exit code 1, usage errors into one line with exit code 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from listener import __version__
from listener.errors import ConfigError, ListenerError, error_text

DEFAULT_CONFIG = "config.toml"


class ListenerGroup(click.Group):
    """Turns our own errors into messages and exit code 1: one line each (secrets redacted), and a
    config's problems one per line, as promtool lists them."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ListenerError as exc:
            raise click.ClickException(error_message(exc)) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """As click's, but a usage error is one line (`Error: No such option: --x (see `listener
        sources --help`)`), exit code 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `listener`: its help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else (prog_name or "listener")
            click.echo(f"Error: {exc.format_message().rstrip('.')} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(0)


def error_message(exc: ListenerError) -> str:
    """One of our errors as the line `Error: ...` shows; a config's several problems one per line."""
    if isinstance(exc, ConfigError) and len(exc.problems) > 1:
        where = f"{exc.file}: " if exc.file else ""
        return (f"{where}{len(exc.problems)} problems:\n"
                + "\n".join("  " + error_text(p, limit=2000) for p in exc.problems))
    return error_text(exc, limit=2000)


@click.group(cls=ListenerGroup)
@click.version_option(__version__, prog_name="listener")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=lambda: os.environ.get("LISTENER_CONFIG", DEFAULT_CONFIG), show_default="./config.toml or $LISTENER_CONFIG",
              help="The configuration file.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """listener: social listening and sentiment monitoring, self-hosted.

    Fetches public mentions of your topics from feeds and APIs, scores their sentiment, keeps
    everything in one SQLite database and alerts you when a conversation turns.
    """
    ctx.obj = {"config_path": config_path}


def _config_here(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """`--config` given after the subcommand (`listener sources --config X`) counts as given before it."""
    if value is not None:
        root = ctx.find_root()
        root.obj = {**(root.obj or {}), "config_path": value}
        ctx.obj = root.obj


def take_config_everywhere(group: click.Group) -> None:
    """Give every command of `group` (and of its subgroups) a `--config` of its own; called once
    every command is registered."""
    for command in group.commands.values():
        if not any(p.name == "config_here" for p in command.params):
            command.params.append(click.Option(["--config", "config_here"], type=click.Path(dir_okay=False, path_type=Path),
                                               expose_value=False, callback=_config_here, is_eager=True,
                                               help="The configuration file (as before the command)."))
        if isinstance(command, click.Group):
            take_config_everywhere(command)
