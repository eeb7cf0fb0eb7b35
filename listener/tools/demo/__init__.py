"""`listener demo`: the whole product offline, in accelerated time, against simulated services.

On 127.0.0.1 the demo starts three simulated services serving a generated multi-day stream about
a fictional brand (Burgerly) in English and Dutch: a news RSS feed, a Mastodon-style hashtag
timeline API and a Hacker-News-style search API (the real `rss`, `mastodon` and `hackernews`
sources read them), plus a local SMTP server. The daemon's jobs then run in accelerated time:
sources polled, mentions scored by the bundled model, rules evaluated, email delivered. On the
way: a loved product launch (no alert), an outage of the Mastodon-style service (a source-down
notice), and the hijack of a campaign hashtag (a backlash alert, joined by the volume and
negative spikes it causes: one incident, one email when it opens and one when it closes). It
ends with the digest of the hijack day and leaves the database for `listener sql` and friends.

Everything it serves is generated from this project's templates (listener/tools/simulate.py) and
served by `services`; here are the demo's configuration and its story in accelerated time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from listener.tools.demo.services import LocalSmtp, SimClock, SimulatedServices, split_posts
from listener.tools.simulate import BRAND, generate

__all__ = ["run_demo", "demo_config", "split_posts"]

STEP = timedelta(minutes=5)


def demo_config(folder: Path, url: str, smtp_port: int) -> str:
    return f"""# Written by `listener demo`: every source is a simulated service on 127.0.0.1.
[database]
path = "{(folder / 'demo.db').as_posix()}"

[[topics]]
name = "burgerly"
query = 'burgerly OR #burgerlystories OR #burgerlyvegan'

[[topics]]
name = "burgerly-nl"
query = "burgerly OR #burgerlystories"
languages = ["nl"]

[[sources]]
name = "news"
kind = "rss"
url = "{url}/news.rss"
every = "10m"

[[sources]]
name = "mastodon"
kind = "mastodon"
instances = ["{url}"]
tags = ["burgerly", "burgerlystories", "burgerlyvegan"]
every = "5m"
max_pages = 10

[[sources]]
name = "hn"
kind = "hackernews"
query = "burgerly"
base_url = "{url}"
item_url = "{url}/hn/item?id={{}}"
every = "10m"

[email]
host = "127.0.0.1"
port = {smtp_port}
from = "listener demo <listener@burgerly.example>"
to = ["pr-team@burgerly.example"]

[digest]
at = "08:00"
timezone = "Europe/Amsterdam"

[[alerts]]
name = "backlash"
kind = "backlash"
topic = "burgerly"

[[alerts]]
name = "volume"
kind = "volume_spike"
topic = "burgerly"

[[alerts]]
name = "negative"
kind = "negative_spike"
topic = "burgerly"

[[alerts]]
name = "recall"
kind = "keyword"
topic = "burgerly"
query = 'recall OR lawsuit'
"""


def run_demo(folder: Path, model_factory: Callable[[], object], echo: Callable[[str], None], *,
             days: int = 6, end: datetime | None = None) -> Path:
    """Run the simulated story; returns the database path."""
    import tomllib

    from listener.alerts.wording import local_time
    from listener.config import parse_config
    from listener.daemon import job_deliver, job_digest, job_evaluate, job_fetch, job_score
    from listener.pipeline import ScoreCache, SourcePool
    from listener.store import open_store

    end = end or datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    launch_day, hijack_day = max(days - 4, 0), days - 1
    posts = generate(start, days, launch_day=launch_day, hijack_day=hijack_day)
    outage = (start + timedelta(days=max(days - 3, 0), hours=9), start + timedelta(days=max(days - 3, 0), hours=11))
    phases = sorted([
        (start + timedelta(days=launch_day, hours=10), "a loved product launch, #burgerlyvegan: no alert expected"),
        (outage[0], "the Mastodon-style service goes down for two hours: a source-down notice expected"),
        (start + timedelta(days=hijack_day, hours=10), "the #burgerlystories campaign starts, friendly: no alert expected"),
        (start + timedelta(days=hijack_day, hours=14), "#burgerlystories is hijacked with horror stories: "
                                                       "a backlash alert expected within minutes"),
    ])
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    mail_dir = folder / "mail"
    mail_dir.mkdir(exist_ok=True)
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    db = folder / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    clock = SimClock(start)
    model = None
    with SimulatedServices(split_posts(posts), clock, outage) as services, LocalSmtp() as smtp:
        text = demo_config(folder, services.url, smtp.port)
        (folder / "demo-config.toml").write_text(text)
        config = parse_config(tomllib.loads(text), file=str(folder / "demo-config.toml"), base_dir=folder)
        echo(f"simulated services on {services.url}: a news feed, a Mastodon-style and a Hacker-News-style API")
        tz = config.digest.tzinfo

        def when(at: datetime) -> str:
            return local_time(at, tz, with_day=True)

        echo(f"{len(posts)} generated mentions of {BRAND} (English and Dutch), {when(start)} to {when(end)}, "
             f"5 simulated minutes per step; times in {config.digest.timezone}")
        sources, scores = SourcePool(), ScoreCache()  # kept for the run, as the daemon keeps them
        with open_store(config.database.path) as store:
            day_start, day_new, day_scored, failures = start, 0, 0, 0
            seen_mails = 0
            while clock.now < end:
                while phases and phases[0][0] <= clock.now:
                    echo(f"-- {when(phases[0][0])}: {phases.pop(0)[1]}")
                for o in job_fetch(config, store, clock.now, pool=sources):
                    day_new += o.new
                    if not o.ok:
                        failures += 1
                if store.count_unscored():
                    if model is None:
                        model = model_factory()
                    day_scored += job_score(store, model, clock.now, cache=scores)
                for t in job_evaluate(config, store, clock.now).transitions:
                    if t.state in ("firing", "resolved"):
                        echo(f"  {when(t.at)} ALERT {t.line().split(' ', 1)[1]}")
                job_digest(config, store, clock.now)  # yesterday's digest, once, after 08:00 Amsterdam
                job_deliver(config, store, clock.now)
                for msg in smtp.messages[seen_mails:]:
                    seen_mails += 1
                    saved = mail_dir / f"{seen_mails:03d}-{_file_word(str(msg['Subject']))}.eml"
                    saved.write_bytes(bytes(msg))
                    echo(f"  {when(clock.now)} email to {msg['To']}: {msg['Subject']}  (saved as {saved.name})")
                    if str(msg["Subject"]).startswith("[listener] FIRING #"):  # the first alert mail, in full
                        body = msg.get_body(preferencelist=("plain",)).get_content()
                        for line in body.strip().splitlines():
                            echo(f"      | {line}")
                clock.now += STEP
                if clock.now - day_start >= timedelta(days=1):
                    echo(f"{day_start:%a %d %b} (UTC day): {day_new} new mentions stored, {day_scored} scored, "
                         f"{failures} failed fetch{'es' if failures != 1 else ''}")
                    day_start, day_new, day_scored, failures = clock.now, 0, 0, 0
            split = store.count_by_sentiment()
        hijack_date = (start + timedelta(days=hijack_day)).date()
        _show_digest(config, hijack_date, echo)
    echo("stored: " + ", ".join(f"{n} {s}" for s, n in split.items()))
    echo(f"database: {db}")
    echo(f"every email it sent: {mail_dir}/*.eml (open one with your mail client)")
    echo(f'try: {_command()} --config {folder / "demo-config.toml"} sql "select hashtag, count(*) from hashtags '
         'group by 1 order by 2 desc limit 5"')
    echo(f'try: {_command()} --config {folder / "demo-config.toml"} serve   and open http://127.0.0.1:8080/: the '
         "dashboard on this database (the overview, the hijack's incident, every mention)")
    return db


def _file_word(subject: str) -> str:
    """A file-name-safe slug of a mail subject."""
    words = "".join(c if c.isalnum() else "-" for c in subject.removeprefix("[listener]").lower())
    return "-".join(w for w in words.split("-") if w)[:60] or "mail"


def _command() -> str:
    """How to call listener here: `listener` when it is on PATH, else the path of this one."""
    import shutil
    import sys

    if shutil.which("listener"):
        return "listener"
    beside = Path(sys.executable).with_name("listener")
    return str(beside) if beside.exists() else "listener"


def _show_digest(config, day, echo) -> None:
    from listener.digest import build_digest, render_text
    from listener.store import open_store

    with open_store(config.database.path) as store:
        digest = build_digest(store, config, day, None)
    echo(f"the daily digest for {day:%a %d %b}:")
    echo(render_text(digest))
