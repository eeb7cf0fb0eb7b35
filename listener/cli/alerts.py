"""Commands about alert rules: `alerts` (each rule's state, the incidents, alerts and outbox of the
last days) and `alerts test` (replaying recorded mentions through the rules)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click
from rich.table import Table

from listener import terminal
from listener.cli.context import load, model_factory, open_store
from listener.cli.group import cli
from listener.cli.output import counted, echo_json_lines, json_option, shown_time
from listener.store import parse_iso


@cli.group(invoke_without_command=True)
@click.option("--days", default=7, show_default=True, help="Show alert events of this many days.")
@json_option("One JSON object per rule, then per incident, then per event.")
@click.pass_context
def alerts(ctx: click.Context, days: int, as_json: bool) -> None:
    """Every rule's state, last evaluation and status (learning...), the incidents and alerts of the last days."""
    if ctx.invoked_subcommand is not None:
        return
    from listener.status import alert_overview, labels_words

    config = load(ctx)
    with open_store(config) as store:
        view = alert_overview(config, store, datetime.now(timezone.utc), days)
    if as_json:
        echo_json_lines(view.records())
        return
    table = Table("rule", "kind", "topic", "state", "last evaluated", "status",
                  title=f"alert rules (times in {config.digest.timezone})")
    for r in view.rules:
        table.add_row(r.rule, r.kind, r.topic or "", r.state_words, shown_time(r.last_evaluated_at, config, "never"),
                      r.status_words)
    console = terminal.console(min_width=120)
    console.print(table)
    if view.leader:
        ended = parse_iso(view.leader["until"]) <= datetime.now(timezone.utc)
        click.echo(terminal.plain(f"evaluated by worker {view.leader['worker']}, leader since "
                                  f"{shown_time(view.leader['since'], config)}"
                                  + (f" until {shown_time(view.leader['until'], config)}" if ended else "")))
    if view.incidents:
        inc = Table("#", "topic", "opened", "closed", "peak/h", "hashtags", "rules", "notices",
                    title=f"incidents of the last {days} days ({config.digest.timezone})")
        for i in view.incidents:
            inc.add_row(str(i["incident"]), i["topic"], shown_time(i["opened_at"], config),
                        shown_time(i["closed_at"], config, "open"), f"{i['peak'] or 0:.0f}",
                        " ".join(f"#{h}" for h in i["hashtags"]), ", ".join(i["rules"]), str(i["notifications"]))
        console.print(inc)
    history = Table("at", "rule", "labels", "state", "summary", title=f"alerts of the last {days} days")
    for e in view.events:
        history.add_row(shown_time(e["at"], config), e["rule"], labels_words(e["labels"]), e["state"], e["summary"] or "")
    console.print(history)
    outbox = view.outbox
    given_up = f", {outbox['given_up']} given up" if outbox["given_up"] else ""
    click.echo(f"outbox: {outbox['queued']} queued, {outbox['sent']} sent{given_up}")
    for p in view.outbox_problems:
        if p["given_up"]:
            click.echo(terminal.plain(f"  {p['channel']}: {p['count']} given up (no retry can deliver them): "
                                      f"{p['last_error']}"))
        else:
            click.echo(terminal.plain(f"  {p['channel']}: {p['count']} waiting since {shown_time(p['oldest'], config)}, "
                                      f"next attempt {shown_time(p['next_attempt_at'], config)}: {p['last_error']}"))


@alerts.command("test")
@click.option("--replay", "replay_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSON Lines of mentions (the `listener export --format jsonl` format).")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Take topics and [[alerts]] from this file instead of --config.")
@click.option("--step", default="1m", show_default=True, help="Simulated time between evaluations.")
@json_option("One JSON object per transition and per notification.")
@click.pass_context
def alerts_test(ctx: click.Context, replay_file: Path, rules_file: Path | None, step: str, as_json: bool) -> None:
    """Replay recorded mentions in accelerated time and print when each alert would have fired."""
    from listener.alerts import check_rules
    from listener.config import load_config, parse_duration
    from listener.tools.jsonl import read_jsonl
    from listener.tools.replay import replay

    config = load_config(rules_file) if rules_file else load(ctx)
    check_rules(config)
    try:
        step_td = parse_duration(step)
    except ValueError:
        raise click.ClickException(f"--step {step!r} is not a duration like 30s, 1m, 5m") from None

    def show(event) -> None:
        if as_json:
            echo_json_lines([event.as_json()])
        else:
            click.echo(event.line())

    events = replay(config, read_jsonl(replay_file), model_factory(config.model)(), step=step_td, on_event=show)
    if not as_json:
        notices = sum(1 for e in events if e.as_json()["type"] == "notification")
        click.echo(f"{counted(len(events) - notices, 'transition')}, {counted(notices, 'notification')}", err=True)
