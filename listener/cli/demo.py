"""The `demo` command: the whole product run offline on simulated services (`listener.tools.demo`)."""

from __future__ import annotations

from pathlib import Path

import click

from listener.cli.context import model_factory
from listener.cli.group import cli


@cli.command()
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("data/demo"),
              show_default=True, help="Where the demo writes its config and database.")
@click.option("--days", default=6, show_default=True, type=click.IntRange(3, 30),
              help="Simulated days (the hijack happens on the last one).")
def demo(folder: Path, days: int) -> None:
    """Run the whole product offline: simulated services, accelerated time, a hijack, email, a digest."""
    from listener.config import ModelConfig
    from listener.tools.demo import run_demo

    run_demo(folder, model_factory(ModelConfig()), click.echo, days=days)
