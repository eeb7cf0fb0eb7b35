"""Measure alert quality on replayed traffic: hijack detection delay, false alarms, notifications.

    .venv/bin/python bench/alert_quality.py [--only NAME[,NAME]] [--quick] [--seed 1] [--split tune]
        [--step 1m] [--rules FILE] [--jobs 1] [--data ../shared/data/sentiment] [--list 10] [--json]

Each scenario is a generated stream of posts about one brand, replayed by `listener.tools.replay` on
its own fresh scratch database (a new install) with the real sentiment model, the rules
evaluated every `--step`. The config has one topic, `brand OR #brand OR @brand`, and the three
standard rules at their defaults:

    [[alerts]]  name = "volume"    kind = "volume_spike"    topic = "<brand>"
    [[alerts]]  name = "negative"  kind = "negative_spike"  topic = "<brand>"
    [[alerts]]  name = "backlash"  kind = "backlash"        topic = "<brand>"

`--rules FILE` takes the [[alerts]] of FILE instead (for tuning), each pointed at the scenario's
topic.

Traffic: Poisson arrivals drawn minute by minute; a daily rhythm (UTC) from 1/6 of the daytime
rate at night to the full rate in the afternoon; weekends at 60%; a third of the posts carry one
or two of 40 everyday hashtags (Zipf); every post names the brand at its start or end as
"Grillhof", "@grillhof" or "#grillhof" (the brand's own hashtag on 40% of posts). Texts are real
tweets sampled by their human label to the scenario's sentiment mix (without replacement until a
label's pool runs out), '#' removed from the hashtags they already had, so that the only hashtags
are the scenario's. `--split tune`: English from en_train.tsv, Dutch from the even data rows of
nl_val.tsv; `--split holdout`: en_val.tsv and the odd rows (same scenarios, other texts). The
traffic is deterministic for a given `--seed` and scenario, whatever `--only` selects.

Scenarios (day 1 is Thursday 2026-11-05; rates per hour at daytime; mixes negative/neutral/positive
by label; ordinary brands 20/45/35; a campaign hashtag is friendly at 2.5/h from 12:00, hijacked
from 14:00; a hijack's mix counts all its posts, 10% being the campaign's friendly, positive ones):

    ordinary-en         14 days, English, 12/h. No incident.
    ordinary-nl-quiet   10 days, Dutch, 6/h (1/h at night). No incident.
    loved-launch        7 days, 10/h; day 4 10:00-16:00 a launch hashtag at 60-100/h, 80% positive.
    always-criticised   7 days, 10/h, 60% negative; day 5 09:00-15:00 a news hashtag at +15/h (2.5x).
    hijack-small-en     day 6: hijack 20/h rising to 40/h over 2 h, fading over 1 h; 78% negative.
    hijack-30-en        day 6: 30/h for 3 h, fading over 1 h; 60% negative.
    hijack-big-en       day 6: 30/h rising to 300/h in 1 h, 2 h at 300/h, fading over 1 h; 80% negative.
    hijack-nl-quiet     Dutch, 6/h; day 6: 15/h rising to 60/h over 2 h, fading over 1 h; 80% negative.
    hijack-day2-en      cold start; day 2: 50/h for 3 h, fading over 1 h; 75% negative.
    hijack-criticised   60% negative brand; day 6: 100/h for 2 h, fading over 1 h; 90% negative.

`--quick` shortens them for smoke runs: 3 days at most, events on day 3 at the latest.

Ground truth: an incident (a hijack) lasts from its first post (the onset) to its last, and its
window runs from the onset to 3 hours after its end. Measured per scenario: the detection delay
(first `firing` of any rule inside the window, minus the onset), the rule and labels that fired
first, firings outside every window (false alarms, listed under the table), notifications inside
each window and outside (the replay's notification objects: what would be sent), the wall time.

Targets: every hijack reaching >= 30/h with a negative majority caught within 30 minutes (one
reaching 300/h within 15); no firing outside incidents; at most two notifications per incident.
Also printed, to check the generator: ordinary posts/h on weekdays 12-17h (the full daytime rate)
and 0-6h, and on weekends 12-17h; the share of posts with an everyday hashtag and with the
brand's; each event's posts and busiest clock hour; the label mix of the hijack's posts.
`--list N` caps the false alarms listed per scenario (0: all; --json always has them all).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import tempfile
import time
import tomllib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from listener.config import parse_config, parse_duration  # noqa: E402
from listener.errors import ListenerError  # noqa: E402
from listener.tools.replay import replay  # noqa: E402
from listener.models.data import read_tsv  # noqa: E402
from listener.sources import Mention  # noqa: E402

UTC = timezone.utc
HOUR = timedelta(hours=1)
START = datetime(2026, 11, 5, tzinfo=UTC)  # a Thursday: the hijacks of day 6 fall on a Tuesday
SOURCE = "social"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sentiment"

# share of the daytime rate by hour of day (UTC): quiet nights, busy afternoons
HOUR_SHAPE = (1 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6, 0.25, 0.4, 0.6, 0.75, 0.85, 0.95,
              1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.75, 0.65, 0.5, 0.35, 0.25)
PLATEAU = range(12, 17)  # the hours at the full daytime rate
WEEKEND = 0.6
EVERYDAY_TAGS = ("lunch", "foodie", "coffee", "rain", "weekend", "monday", "friday", "dinner", "breakfast", "travel",
                 "music", "football", "work", "family", "commute", "traffic", "weather", "news", "streetfood", "city",
                 "photography", "art", "fitness", "running", "cycling", "tech", "gaming", "movies", "books", "podcast",
                 "friends", "dogs", "nature", "shopping", "summer", "winter", "holiday", "tbt", "sunday", "amsterdam")
ZIPF = tuple(1 / (k + 1) for k in range(len(EVERYDAY_TAGS)))
TAGGED_SHARE = 1 / 3  # posts with everyday hashtags; a third of those have two
BRAND_FORMS = (("{Brand}", 0.35), ("@{brand}", 0.25), ("#{brand}", 0.40))  # how a post names the brand

ORDINARY = (0.20, 0.45, 0.35)
CRITICISED = (0.60, 0.25, 0.15)
FRIENDLY = (0.0, 0.3, 0.7)
LOVED = (0.05, 0.15, 0.80)
CAMPAIGN_HOUR, HIJACK_HOUR = 12, 14
GRACE = timedelta(hours=3)  # an incident's window ends this long after its last post
STANDARD_RULES = (("volume", "volume_spike"), ("negative", "negative_spike"), ("backlash", "backlash"))


# ---------------------------------------------------------------- scenario descriptions
@dataclass(frozen=True)
class Burst:
    """Extra posts carrying `tag` from `hour` of `day` (0 = the first): `profile` gives the rate per
    hour at hours after the start, linear in between, nothing after the last point."""

    kind: str  # launch / news / campaign / hijack (the incidents)
    tag: str
    day: int
    hour: float
    profile: tuple[tuple[float, float], ...]
    mix: tuple[float, float, float]
    friendly: float = 0.0  # share of the burst's posts that are the campaign's friendly (positive) ones

    def __post_init__(self):
        assert self.friendly <= self.mix[2], f"#{self.tag}: the friendly posts are among the positive ones"

    @property
    def start(self) -> datetime:
        return START + timedelta(days=self.day, hours=self.hour)

    @property
    def minutes(self) -> int:
        return round(self.profile[-1][0] * 60)

    def rate(self, hours: float) -> float:
        for (h0, r0), (h1, r1) in zip(self.profile, self.profile[1:]):
            if h0 <= hours <= h1:
                return r0 + (r1 - r0) * (hours - h0) / (h1 - h0)
        return 0.0

    def deadline(self) -> timedelta | None:
        """The detection target: hijacks reaching >= 30/h with a negative majority within 30 minutes of
        their onset, those reaching 300/h within 15; None for the others."""
        peak = max(r for _, r in self.profile)
        if self.kind != "hijack" or peak < 30 or self.mix[0] <= 0.5:
            return None
        return timedelta(minutes=15 if peak >= 300 else 30)


@dataclass(frozen=True)
class Scenario:
    name: str
    language: str  # of the texts: en / nl
    brand: str  # the topic's name, lower case
    days: int
    rate: float  # ordinary posts per hour at daytime on weekdays
    mix: tuple[float, float, float] = ORDINARY
    bursts: tuple[Burst, ...] = ()

    def quick(self) -> Scenario:
        """The smoke-run version: 3 days at most, events on the last day at the latest."""
        days = min(self.days, 3)
        return replace(self, days=days, bursts=tuple(replace(b, day=min(b.day, days - 1)) for b in self.bursts))


def hijacked_campaign(tag: str, day: int, profile: tuple[tuple[float, float], ...],
                      mix: tuple[float, float, float]) -> tuple[Burst, Burst]:
    """The brand launches `tag` (friendly, 2.5/h for two hours), then it is hijacked."""
    return (Burst("campaign", tag, day, CAMPAIGN_HOUR, ((0, 2.5), (HIJACK_HOUR - CAMPAIGN_HOUR, 2.5)), FRIENDLY),
            Burst("hijack", tag, day, HIJACK_HOUR, profile, mix, friendly=0.10))


SCENARIOS = (
    Scenario("ordinary-en", "en", "grillhof", 14, 12),
    Scenario("ordinary-nl-quiet", "nl", "frietpaleis", 10, 6),
    Scenario("loved-launch", "en", "grillhof", 7, 10,
             bursts=(Burst("launch", "grillhofsmash", 3, 10, ((0, 60), (3, 100), (6, 60)), LOVED),)),
    Scenario("always-criticised", "en", "voltnet", 7, 10, CRITICISED,
             bursts=(Burst("news", "voltnetmerger", 4, 9, ((0, 15), (6, 15)), CRITICISED),)),  # 10/h + 15/h = 2.5x
    Scenario("hijack-small-en", "en", "grillhof", 6, 10,
             bursts=hijacked_campaign("grillhofmoments", 5, ((0, 20), (2, 40), (3, 0)), (0.78, 0.12, 0.10))),
    Scenario("hijack-30-en", "en", "grillhof", 6, 10,
             bursts=hijacked_campaign("grillhofmoments", 5, ((0, 30), (3, 30), (4, 0)), (0.60, 0.22, 0.18))),
    Scenario("hijack-big-en", "en", "grillhof", 6, 10,
             bursts=hijacked_campaign("grillhofmoments", 5, ((0, 30), (1, 300), (3, 300), (4, 0)), (0.80, 0.10, 0.10))),
    Scenario("hijack-nl-quiet", "nl", "frietpaleis", 6, 6,
             bursts=hijacked_campaign("frietpaleisverhalen", 5, ((0, 15), (2, 60), (3, 0)), (0.80, 0.10, 0.10))),
    Scenario("hijack-day2-en", "en", "grillhof", 2, 10,
             bursts=hijacked_campaign("grillhofmoments", 1, ((0, 50), (3, 50), (4, 0)), (0.75, 0.13, 0.12))),
    Scenario("hijack-criticised", "en", "voltnet", 6, 10, CRITICISED,
             bursts=hijacked_campaign("voltnetstories", 5, ((0, 100), (2, 100), (3, 0)), (0.90, 0.0, 0.10))),
)


# ---------------------------------------------------------------- texts
def load_texts(data: Path, split: str) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """Texts per language and human label (0/1/2) for `split`, '#' taken off their hashtags."""
    english = read_tsv(data / ("en_train.tsv" if split == "tune" else "en_val.tsv"))
    dutch = read_tsv(data / "nl_val.tsv")[0 if split == "tune" else 1::2]
    out = {}
    for language, examples in (("en", english), ("nl", dutch)):
        by_label: tuple[list[str], list[str], list[str]] = ([], [], [])
        for e in examples:
            by_label[e.label].append(re.sub(r"#(?=\w)", "", e.text).strip())
        out[language] = by_label
    return out


class TextPool:
    """Texts of one language drawn by label without replacement; a label's pool is reshuffled when it runs out."""

    def __init__(self, by_label: tuple[list[str], list[str], list[str]], rng: random.Random):
        self.by_label, self.rng = by_label, rng
        self.decks: list[list[str]] = [[], [], []]

    def draw(self, label: int) -> str:
        if not self.decks[label]:
            self.decks[label] = self.rng.sample(self.by_label[label], len(self.by_label[label]))
        return self.decks[label].pop()


# ---------------------------------------------------------------- traffic
@dataclass(frozen=True)
class Post:
    at: datetime
    kind: str  # ordinary, a burst's kind, or friendly (a campaign post during its hijack)
    burst: int | None  # index in the scenario's bursts
    label: int  # the text's human label
    text: str
    tags: tuple[str, ...]  # the text's hashtags, without '#'
    author: str
    likes: int


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method: lam is at most a few posts a minute here."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def arrivals(rng: random.Random, start: datetime, minutes: int, per_hour) -> list[datetime]:
    """Poisson arrival times over `minutes` from `start`; `per_hour(minute's middle)` is the rate."""
    out = []
    for m in range(minutes):
        t = start + timedelta(minutes=m)
        for _ in range(poisson(rng, per_hour(t + timedelta(seconds=30)) / 60)):
            out.append(t + timedelta(seconds=rng.randrange(60)))
    return out


def ordinary_rate(scenario: Scenario, t: datetime) -> float:
    return scenario.rate * HOUR_SHAPE[t.hour] * (WEEKEND if t.weekday() >= 5 else 1.0)


def compose(rng: random.Random, brand: str, text: str, event_tag: str | None) -> tuple[str, tuple[str, ...]]:
    """A post's text: the dataset text with the brand at its start or end, the event's hashtag and
    everyday hashtags; and the hashtags it carries."""
    form = rng.choices([f for f, _ in BRAND_FORMS], [w for _, w in BRAND_FORMS])[0]
    name = form.format(Brand=brand.capitalize(), brand=brand)
    words = [name, text] if rng.random() < 0.5 else [text, name]
    tags = [brand] if name.startswith("#") else []
    if event_tag:
        words.insert(0 if rng.random() < 0.3 else len(words), f"#{event_tag}")
        tags.append(event_tag)
    if rng.random() < TAGGED_SHARE:
        everyday = list(dict.fromkeys(rng.choices(EVERYDAY_TAGS, ZIPF, k=1 if rng.random() < 2 / 3 else 2)))
        words += [f"#{t}" for t in everyday]
        tags += everyday
    return " ".join(words), tuple(dict.fromkeys(tags))


def generate(scenario: Scenario, texts: dict, seed: int) -> list[Post]:
    """The scenario's posts in published order: ordinary traffic plus its bursts."""
    rng = random.Random(f"{seed}:{scenario.name}")
    pool = TextPool(texts[scenario.language], rng)

    def post(at: datetime, mix: tuple[float, float, float], burst: int | None) -> Post:
        b = scenario.bursts[burst] if burst is not None else None
        label = rng.choices((0, 1, 2), mix)[0]
        kind = b.kind if b else "ordinary"
        if b and b.friendly and label == 2 and rng.random() < b.friendly / mix[2]:
            kind = "friendly"
        text, tags = compose(rng, scenario.brand, pool.draw(label), b.tag if b else None)
        return Post(at, kind, burst, label, text, tags, f"user{rng.randrange(30_000)}", int(rng.paretovariate(1.5)) - 1)

    posts = [post(at, scenario.mix, None)
             for at in arrivals(rng, START, scenario.days * 24 * 60, lambda t: ordinary_rate(scenario, t))]
    for i, b in enumerate(scenario.bursts):
        times = arrivals(rng, b.start, b.minutes, lambda t, b=b: b.rate((t - b.start) / HOUR))
        posts += [post(at, b.mix, i) for at in times]
    return sorted(posts, key=lambda p: p.at)


def as_mentions(scenario: Scenario, posts: list[Post]) -> list[tuple[str, Mention]]:
    return [(SOURCE, Mention(source_id=f"{scenario.name}-{i}", text=p.text, author=p.author, published_at=p.at,
                             url=f"https://social.example/{scenario.name}/{i}", language=scenario.language,
                             hashtags=p.tags, likes=p.likes))
            for i, p in enumerate(posts)]


# ---------------------------------------------------------------- ground truth and traffic checks
@dataclass(frozen=True)
class Incident:
    tag: str
    onset: datetime  # the first hijack post
    end: datetime  # the last one
    deadline: timedelta | None
    labels: tuple[int, int, int]  # posts of the hijack per human label

    @property
    def window_end(self) -> datetime:
        return self.end + GRACE

    def covers(self, at: datetime) -> bool:
        return self.onset <= at <= self.window_end


def incidents_of(scenario: Scenario, posts: list[Post]) -> list[Incident]:
    out = []
    for i, b in enumerate(scenario.bursts):
        if b.kind == "hijack":
            mine = [p for p in posts if p.burst == i]
            counts = Counter(p.label for p in mine)
            out.append(Incident(b.tag, mine[0].at, mine[-1].at, b.deadline(), (counts[0], counts[1], counts[2])))
    return out


def traffic_figures(scenario: Scenario, posts: list[Post]) -> dict:
    """What the generator made, to check it against the description."""
    ordinary = [p for p in posts if p.kind == "ordinary"]

    def per_hour(weekend: bool, hours: range) -> float | None:
        days = {p.at.date() for p in ordinary if (p.at.weekday() >= 5) == weekend}
        n = sum(p.at.hour in hours for p in ordinary if (p.at.weekday() >= 5) == weekend)
        return round(n / len(days) / len(hours), 1) if days else None

    bursts = {}
    for i, b in enumerate(scenario.bursts):
        hours = Counter(p.at.replace(minute=0, second=0) for p in posts if p.burst == i)
        bursts[f"{b.kind} #{b.tag}"] = {"posts": sum(hours.values()), "busiest_hour": max(hours.values(), default=0)}
    return {"ordinary_per_hour_day": per_hour(False, PLATEAU), "ordinary_per_hour_night": per_hour(False, range(6)),
            "ordinary_per_hour_weekend_day": per_hour(True, PLATEAU),
            "everyday_tag_share": round(sum(any(t in EVERYDAY_TAGS for t in p.tags) for p in posts) / len(posts), 3),
            "brand_tag_share": round(sum(scenario.brand in p.tags for p in posts) / len(posts), 3),
            "bursts": bursts}


# ---------------------------------------------------------------- the engine's events
def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))




def show_labels(labels: dict) -> str:
    """`#tag` for a hashtag, `k=v` for the rest; the topic is left out (it is the scenario's brand)."""
    parts = [f"#{v}" if k == "hashtag" else f"{k}={v}" for k, v in labels.items() if k != "topic"]
    return " ".join(parts)


def assess(events: list[dict], incidents: list[Incident]) -> dict:
    """Detection, false alarms and notifications against the ground truth."""
    firings = [e for e in events if e["type"] == "transition" and e["state"] == "firing"]
    notes = [e for e in events if e["type"] == "notification"]
    per_incident = []
    for inc in incidents:
        inside = [e for e in firings if inc.covers(parse_at(e["at"]))]
        first = min(inside, key=lambda e: parse_at(e["at"]), default=None)
        delay = (parse_at(first["at"]) - inc.onset) if first else None
        n = sum(inc.covers(parse_at(e["at"])) for e in notes)
        per_incident.append({
            "tag": inc.tag, "onset": stamp(inc.onset), "end": stamp(inc.end), "window_end": stamp(inc.window_end),
            "delay_min": round(delay / timedelta(minutes=1), 1) if delay is not None else None,
            "deadline_min": inc.deadline // timedelta(minutes=1) if inc.deadline else None,
            "caught_in_time": (delay is not None and delay <= inc.deadline) if inc.deadline else None,
            "first": {k: first[k] for k in ("rule", "labels", "at", "summary")} if first else None,
            "notifications": n, "label_mix": [round(c / sum(inc.labels), 3) for c in inc.labels]})
    outside = [e for e in firings if not any(inc.covers(parse_at(e["at"])) for inc in incidents)]
    return {"incidents": per_incident,
            "firings_outside": [{k: e[k] for k in ("at", "rule", "labels", "summary")} for e in outside],
            "notifications_outside": sum(not any(inc.covers(parse_at(e["at"])) for inc in incidents) for e in notes)}


# ---------------------------------------------------------------- one scenario
def scenario_config(scenario: Scenario, rules: list[dict] | None, tmp: Path):
    """The replay's config: the brand's topic and the standard rules (or `rules`, pointed at the topic)."""
    b = scenario.brand
    rules = rules or [{"name": name, "kind": kind} for name, kind in STANDARD_RULES]
    alerts = [r if r.get("kind") == "sql" else {**r, "topic": b} for r in rules]
    return parse_config({"database": {"path": str(tmp / "unused.db")},
                         "topics": [{"name": b, "query": f"{b} OR #{b} OR @{b}"}], "alerts": alerts}, base_dir=tmp)


_process: dict = {}  # per process: the model and the texts, loaded once


def process_state(data: Path, split: str, threads: int | None) -> tuple[object, dict]:
    if "model" not in _process:
        from listener.models import load_model

        t0 = time.perf_counter()
        _process["model"] = load_model("bundled", threads=threads)
        _process["texts"] = load_texts(data, split)
        print(f"[pid {os.getpid()}] model and texts loaded in {time.perf_counter() - t0:.1f} s", file=sys.stderr,
              flush=True)
    return _process["model"], _process["texts"]


def run_scenario(scenario: Scenario, opts: dict) -> dict:
    """Generate, replay and assess one scenario; a JSON-able result."""
    model, texts = process_state(opts["data"], opts["split"], opts["threads"])
    t0 = time.perf_counter()
    posts = generate(scenario, texts, opts["seed"])
    incidents = incidents_of(scenario, posts)
    print(f"  {scenario.name}: {len(posts):,} posts over {scenario.days} days, replaying ...", file=sys.stderr,
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = scenario_config(scenario, opts["rules"], Path(tmp))
        raw = replay(config, as_mentions(scenario, posts), model, step=opts["step"], workdir=Path(tmp))
    wall = time.perf_counter() - t0
    events = [e.as_json() for e in raw]
    result = {"scenario": scenario.name, "days": scenario.days, "posts": len(posts),
              **assess(events, incidents),
              "events": dict(Counter(f"{e['type']}:{e.get('state', '')}".rstrip(":") for e in events)),
              "wall_s": round(wall, 1), "traffic": traffic_figures(scenario, posts)}
    print(f"  {scenario.name}: done in {wall:.1f} s ({len(events)} events)", file=sys.stderr, flush=True)
    return result


def run_all(scenarios: list[Scenario], opts: dict, jobs: int) -> list[dict]:
    """Results in the scenarios' order; with jobs > 1 in that many processes, the longest scenarios first."""
    if jobs <= 1:
        return [run_scenario(s, opts) for s in scenarios]
    results = {}
    with ProcessPoolExecutor(max_workers=min(jobs, len(scenarios))) as pool:
        futures = {pool.submit(run_scenario, s, opts): s.name
                   for s in sorted(scenarios, key=lambda s: -s.days)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
    return [results[s.name] for s in scenarios]


# ---------------------------------------------------------------- targets and output
def targets(results: list[dict]) -> list[tuple[bool | None, str, str]]:
    """(passed, target, what failed) for each of the three targets; passed is None when nothing was judged."""
    late = [f"{r['scenario']} {delay_text(i)} (target {i['deadline_min']} min)"
            for r in results for i in r["incidents"] if i["caught_in_time"] is False]
    judged = sum(i["caught_in_time"] is not None for r in results for i in r["incidents"])
    false = [f"{r['scenario']} {len(r['firings_outside'])}" for r in results if r["firings_outside"]]
    noisy = [f"{r['scenario']} {i['notifications']}" for r in results for i in r["incidents"] if i["notifications"] > 2]
    return [(not late if judged else None, "hijacks reaching >= 30/h with a negative majority caught within "
             f"30 min, 300/h within 15 ({judged} judged)", ", ".join(late)),
            (not false, "no firing outside incidents", ", ".join(false)),
            (not noisy, "at most two notifications per incident", ", ".join(noisy))]


def delay_text(incident: dict) -> str:
    return "missed" if incident["delay_min"] is None else f"{incident['delay_min']:g} min"


def delay_cell(r: dict) -> str:
    cells = [f"{delay_text(i)} (<= {i['deadline_min']})" if i["deadline_min"] else delay_text(i)
             for i in r["incidents"]]
    return "; ".join(cells) or "-"


def first_cell(r: dict) -> str:
    firsts = [i["first"] for i in r["incidents"] if i["first"]]
    return "; ".join(f"{f['rule']} {show_labels(f['labels'])}".strip() for f in firsts) or "-"


def results_table(results: list[dict]) -> list[str]:
    lines = ["| scenario | days | posts | detection delay (target) | first firing | firings outside | "
             "notifications / incident | notifications outside | wall s |",
             "|---|---:|---:|---|---|---:|---:|---:|---:|"]
    for r in results:
        per = ", ".join(str(i["notifications"]) for i in r["incidents"]) or "-"
        lines.append(f"| {r['scenario']} | {r['days']} | {r['posts']:,} | {delay_cell(r)} | {first_cell(r)} | "
                     f"{len(r['firings_outside'])} | {per} | {r['notifications_outside']} | {r['wall_s']:.1f} |")
    return lines


def target_lines(results: list[dict]) -> list[str]:
    return [f"- {({True: 'PASS', False: 'FAIL', None: 'N/A'})[passed]} {target}" + (f": {failed}" if failed else "")
            for passed, target, failed in targets(results)]


def false_alarm_lines(results: list[dict], listed: int) -> list[str]:
    """The firings outside incidents, `listed` per scenario at most (0: all)."""
    if not any(r["firings_outside"] for r in results):
        return []
    lines = [f"Firings outside incidents{f' (the first {listed} of each scenario)' if listed else ''}:", ""]
    for r in results:
        shown = r["firings_outside"][:listed or None]
        lines += [" ".join(filter(None, ("-", r["scenario"], f["at"], f["rule"], show_labels(f["labels"]),
                                         f["summary"]))) for f in shown]
        if len(shown) < len(r["firings_outside"]):
            lines.append(f"- {r['scenario']}: {len(r['firings_outside']) - len(shown)} more (--json lists them all)")
    return lines


def traffic_table(results: list[dict]) -> list[str]:
    lines = ["Traffic as generated (ordinary posts/h: weekdays 12-17h and 0-6h, weekends 12-17h; events: posts, "
             "busiest clock hour; the hijack's posts by human label):", "",
             "| scenario | day /h | night /h | weekend day /h | everyday tag | brand's tag | events "
             "| hijack neg/neu/pos |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        t = r["traffic"]
        rates = " | ".join("-" if t[k] is None else f"{t[k]:g}" for k in
                           ("ordinary_per_hour_day", "ordinary_per_hour_night", "ordinary_per_hour_weekend_day"))
        events = "; ".join(f"{k} {v['posts']} posts, {v['busiest_hour']}/h" for k, v in t["bursts"].items()) or "-"
        mix = "; ".join("/".join(f"{100 * x:.0f}%" for x in i["label_mix"]) for i in r["incidents"]) or "-"
        lines.append(f"| {r['scenario']} | {rates} | {100 * t['everyday_tag_share']:.0f}% | "
                     f"{100 * t['brand_tag_share']:.0f}% | {events} | {mix} |")
    return lines


def markdown(results: list[dict], header: str, listed: int) -> str:
    parts = [[header], results_table(results), target_lines(results), false_alarm_lines(results, listed),
             traffic_table(results)]
    return "\n\n".join("\n".join(p) for p in parts if p)


def read_rules(path: Path) -> list[dict]:
    """The [[alerts]] tables of a TOML file."""
    try:
        alerts = tomllib.loads(path.read_text(encoding="utf-8")).get("alerts")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SystemExit(f"{path}: cannot read the rules ({exc})") from None
    if not alerts:
        raise SystemExit(f"{path}: no [[alerts]] tables")
    return alerts


def select(names: str | None, quick: bool) -> list[Scenario]:
    known = {s.name: s for s in SCENARIOS}
    wanted = names.split(",") if names else list(known)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"unknown scenario {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n].quick() if quick else known[n] for n in wanted]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", metavar="NAME[,NAME]", help="Run only these scenarios.")
    ap.add_argument("--quick", action="store_true", help="Short scenarios (3 days at most) for smoke runs.")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--split", choices=("tune", "holdout"), default="tune",
                    help="tune: en_train + even nl_val rows; holdout: en_val + odd nl_val rows.")
    ap.add_argument("--step", default="1m", help="Evaluation step of the replay (default 1m).")
    ap.add_argument("--rules", type=Path, help="TOML file whose [[alerts]] replace the three standard rules.")
    ap.add_argument("--jobs", type=int, default=1, help="Scenarios in parallel processes.")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Folder of the sentiment TSV files.")
    ap.add_argument("--list", type=int, default=10, metavar="N",
                    help="Firings outside incidents listed per scenario under the table (default 10, 0: all).")
    ap.add_argument("--json", action="store_true", help="One JSON object per scenario instead of the Markdown.")
    args = ap.parse_args()
    try:
        step = parse_duration(args.step)
    except ValueError as exc:
        raise SystemExit(f"--step: {exc}") from None
    if not (args.data / "en_train.tsv").exists():
        raise SystemExit(f"{args.data}: sentiment data not found (en_train.tsv, en_val.tsv, nl_val.tsv); "
                         "pass --data DIR")
    scenarios = select(args.only, args.quick)
    rules = read_rules(args.rules) if args.rules else None
    with tempfile.TemporaryDirectory() as tmp:  # a bad rule stops the run before any model is loaded
        try:
            for s in scenarios:
                scenario_config(s, rules, Path(tmp))
        except ListenerError as exc:
            raise SystemExit(f"{args.rules}: {exc}") from None
    jobs = max(1, min(args.jobs, len(scenarios)))
    opts = {"data": args.data, "split": args.split, "seed": args.seed, "step": step, "rules": rules,
            "threads": max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None}
    t0 = time.perf_counter()
    try:
        results = run_all(scenarios, opts, jobs)
    except ListenerError as exc:
        raise SystemExit(str(exc)) from None
    total = time.perf_counter() - t0
    if args.json:
        for r in results:
            print(json.dumps(r, ensure_ascii=False))
        return
    rules_text = f"rules from {args.rules}" if args.rules else "the three standard rules at their defaults"
    runs = f"{len(results)} scenario{'s' if len(results) != 1 else ''}{' (quick)' if args.quick else ''}"
    header = (f"## Alert quality: {runs}, seed {args.seed}, split {args.split}, step {args.step}, {rules_text}; "
              f"{total:.0f} s in all, jobs {jobs}")
    print(markdown(results, header, args.list))


if __name__ == "__main__":
    main()
