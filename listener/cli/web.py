"""The dashboard's commands: `serve` (the web dashboard on the configured database) and `user-hash`
(a line `name:hash` for LISTENER_USERS)."""

from __future__ import annotations

import click

from listener.cli.context import load
from listener.cli.group import cli
from listener.cli.output import err_console


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; beyond loopback needs users (LISTENER_USERS or LISTENER_USERS_FILE).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the web dashboard: overview, topics, mentions, incidents, sources (http://127.0.0.1:8080)."""
    import uvicorn

    from listener import terminal
    from listener.store import open_store
    from listener.web import create_app
    from listener.web.security import (SECRET_ENV, USERS_ENV, USERS_FILE_ENV, is_loopback, load_users, secret_key,
                                       trusted_hosts)

    config = load(ctx)
    users = load_users()
    if not users and not is_loopback(host):
        raise click.ClickException(f"listening on {host} lets other machines in: set {USERS_ENV} or {USERS_FILE_ENV} "
                                   "(lines name:hash from `listener user-hash`) first, or serve on 127.0.0.1")
    key, kept = secret_key()
    open_store(config.database.location).close()  # created and migrated once, before the first request
    app = create_app(config, lambda: open_store(config.database.location), secret_key=key, users=users,
                     hosts=trusted_hosts(host, users))
    who = f"{len(users)} user{'s' if len(users) != 1 else ''} may log in" if users else "no login (loopback only)"
    err_console.print(terminal.styled(f"dashboard on http://{host}:{port}/ ({who}); times in {config.digest.timezone}",
                                      "bold"))
    if users and not kept:
        err_console.print(f"{SECRET_ENV} is not set: sessions are signed with a key made at start-up, so a restart "
                          "logs everyone out")
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)


@cli.command("user-hash")
@click.argument("name")
@click.password_option("--password", prompt="Password", help="The password (asked when not given; read from stdin "
                       "when piped).")
def user_hash(name: str, password: str) -> None:
    """Print a line `NAME:scrypt$...` for LISTENER_USERS or LISTENER_USERS_FILE (a dashboard user)."""
    from listener.web.security import hash_password

    if ":" in name or not name.strip():
        raise click.ClickException("a user name has no ':' and is not empty")
    click.echo(f"{name}:{hash_password(password)}")
