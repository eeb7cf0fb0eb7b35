"""`backlash`: a hashtag of the topic bursts, and its posts are far more negative than the topic's.

The #McDStories detector. Evidence accumulates as posts arrive (a scan test, the statistic of a
CUSUM on the Poisson rate): for every start time s up to LOOKBACK back, the posts of the hashtag
since s are compared with what its usual rate would give. It fires as soon as the burst carries
enough evidence of the volume and its posts are clearly more negative than the topic's usual,
so six angry posts in fifteen minutes on a hashtag nobody used are enough, while twenty an hour
on a hashtag that always has twenty are not. `min_count` (6 by default) is a floor under that
evidence, not part of it: at 8 it only held back hijacks the evidence already showed (a 20/h
hijack at 30.6 min instead of 19.6 in bench/alert_quality.py); at 3, three posts of an everyday
hashtag, or the first three of a criticised brand's news, pass for a turn (two false alarms in
four runs that 4 to 8 do not have).

- The usual rate of the hashtag is the upper bound (99%) of a gamma posterior: its count over
  the history since the topic's data began, with a prior worth PRIOR_HOURS of a new hashtag's rate
  (NEW_TAG_RATE an hour, or NEW_TAG_SHARE of the topic's rate for a busy topic). A short history
  keeps the bound high; a hashtag unseen for a week gets a low one. It is scaled by the topic's
  rhythm at this time of day (a busy afternoon).
- The burst is the hashtag's current regime: its posts since the likeliest rise of their rate
  (`stats.rate_change`, when the rise carries `change_evidence`: CHANGE_EVIDENCE plus the log of
  the posts, each a place where the rate could have risen, so that a chance cluster in hours of a
  steady story is no rise while a campaign of a few posts hijacked is), else all its posts in LOOKBACK.
  Its share is that of all those posts: a steady news story as negative as usual is not a hijack
  because a run of eleven of its posts happens to be more negative, and a campaign's friendly
  posts before a hijack (2/h, then 20/h) do not dilute it.
- Shares are the model's own: the burst's expected negatives (sum of P(negative)) against the
  most the topic's usual share, as the same model scores it, plausibly is. Where the model
  under-counts negatives (Dutch) it does so on both sides. The evidence counts one post's
  P(negative) spread as measured on the topic (TopicBaseline.spread: 0.29 on a Dutch topic where
  the model hedges, 0.36 on an always-criticised one).
- The hashtag that is the topic itself (#acme for a topic `acme`) is never a separate backlash.
- Nor is a hashtag riding a busier bursting one: half or more of its posts in the window carry
  that one (a third of a hijack's posts also say #lunch or #coffee: the hijack lists them). A
  hashtag that would fire is carried only by one that fires too.
"""

from __future__ import annotations

import math
from datetime import timedelta

from listener.alerts.kinds import AlertKind, Observation, Scope, is_own_hashtag, topic_baseline
from listener.alerts.wording import format_window, percent
from listener.alerts.stats import HOUR, gamma_upper, mean_evidence, odds, poisson_llr, prorated_count, rate_change

NEW_TAG_RATE = 0.5  # mentions/h a hashtag with no history is assumed to have (before evidence)
NEW_TAG_SHARE = 0.05  # ... or this share of the topic's usual rate, for a busy topic
PRIOR_HOURS = 24.0  # the weight of that assumption, in hours of history
MIN_SEGMENT = 10 / 60  # hours: a burst is never measured over less than ten minutes ...
LOOKBACK = timedelta(hours=6)  # ... nor found further back than this (its share is that of all its posts)
CHANGE_EVIDENCE = 2.3  # nats (a likelihood ratio of 10) that the hashtag's rate rose within the burst, plus
# the log of its posts (each is a place where it could have risen: a longer steady story has more chance clusters)
VOLUME_EVIDENCE = 9.2  # nats (a likelihood ratio of 10,000) that the hashtag's rate is up
SHARE_EVIDENCE = 1.0  # nats (z = 1.41) that its posts are more negative than the topic's usual at most is
NEGATIVE_ODDS = 1.75  # the hashtag's negative odds must be this many times the topic's usual odds ...
MIN_SHIFT = 0.12  # ... and its share this much above the usual share (the model's shares are compressed)
RIDING = 0.5  # a hashtag with this share of its posts carried by a busier bursting one rides that burst


class Backlash(AlertKind):
    kind = "backlash"
    urgent = True
    rank = 0

    def observe(self, scope: Scope) -> list[Observation]:
        rule, store, now = self.rule, scope.store, scope.now
        posts_by_tag = store.hashtag_posts(rule.topic, now - rule.window, now)
        candidates = {t: p for t, p in posts_by_tag.items() if len(p) >= max(rule.min_count, 1)}
        if not candidates:
            return []
        base = topic_baseline(scope, rule.topic, rule.window, rule.baseline)
        usual, usual_upper = base.usual_negative, base.negative_upper
        lookback = max(rule.window, LOOKBACK)
        hist_start, hist_hours = scope.history_hours(lookback, rule.baseline)
        new_rate = max(NEW_TAG_RATE, NEW_TAG_SHARE * base.rate)
        candidates = {t: p for t, p in candidates.items()
                      if not is_own_hashtag(scope, rule.topic, tag=t, window=lookback, baseline=rule.baseline)}
        pairs = store.hashtag_pairs(rule.topic, now - rule.window, now) if len(candidates) > 1 else {}
        leading: list[Observation] = []  # bursting hashtags so far, the busiest first
        out = []
        for tag, posts in sorted(candidates.items(), key=lambda tp: (-len(tp[1]), tp[0])):
            carriers = [o for o in leading if pairs.get(tuple(sorted((tag, o.labels["hashtag"]))), 0)
                        >= RIDING * len(posts)]
            burst_posts = store.hashtag_posts(rule.topic, now - lookback, now, hashtag=tag).get(tag, posts)
            if not _can_hold(posts, burst_posts, usual, usual_upper, rule):
                continue
            labels = {"topic": rule.topic, "hashtag": tag}
            hourly = store.hashtag_hours(rule.topic, tag, hist_start, now)
            history = prorated_count(hourly, hist_start, now - lookback) if hist_hours > 0 else 0.0
            rate_upper = gamma_upper(history + new_rate * PRIOR_HOURS, hist_hours + PRIOR_HOURS)
            usual_rate = rate_upper * base.rhythm
            seg, active = _burst(burst_posts, now, usual_rate, usual_upper, usual, base.spread, rule)
            n = len(posts)
            k = sum(p for _, p, _ in posts)
            share = k / n
            window_h = rule.window / HOUR
            ratio = n / (usual_rate * window_h)
            sustained = (n >= 3 and ratio >= 2 and share > usual_upper
                         and odds(share) >= 1.5 * odds(usual))
            labelled = sum(1 for _, _, negative in posts if negative)
            summary = (f"{n} posts in the last {format_window(rule.window)}, {percent(labelled / n)} negative, "
                       f"{ratio:.0f}x usual")
            details = {"hashtag": tag, "count": n, "negative": round(k, 1), "window": format_window(rule.window),
                       "negative_share": round(share, 3), "usual_negative_share": round(usual, 3),
                       "usual_upper": round(usual_upper, 3), "usual_rate": round(usual_rate, 3),
                       "history_count": round(history, 1), "history_hours": round(hist_hours, 1),
                       "ratio": round(ratio, 1), "segment": seg, "new_hashtag": history < 1}
            if active:
                first = store.hashtag_first_seen(rule.topic, tag)
                details["first_seen"] = first.strftime("%Y-%m-%dT%H:%M:%SZ") if first else None
            obs = Observation(labels, active, n, summary, details, sustained, n / window_h)
            # #lunch on a tenth of a hijack's posts bursts with the hijack: it is the hijack, not a
            # second one. Only a firing-strength burst carries one that could fire itself.
            carrier = next((o for o in carriers if o.active or not active), None)
            if carrier is not None:
                if active or sustained:
                    carrier.details.setdefault("carried", []).append(tag)
                continue
            if active or sustained:
                leading.append(obs)
            out.append(obs)
        return sorted(out, key=lambda o: o.labels["hashtag"])

    def explain(self, obs: Observation) -> list[str]:
        d = obs.details
        seg = d.get("segment") or {}
        history = ("it had no mentions before" if d.get("new_hashtag") else
                   f"{d['history_count']:g} mentions in the {d['history_hours']:g} hours before")
        lines = [f"#{d['hashtag']}: {d['count']} posts in the last {d['window']}, {percent(d['negative_share'])} "
                 f"negative (the model's expected negatives; the topic's usual: {percent(d['usual_negative_share'])}, "
                 f"at most {percent(d['usual_upper'])}).",
                 f"Usual rate of the hashtag: at most {d['usual_rate']:.2g} an hour ({history}).",
                 ]
        if seg:
            lines.append(f"The burst: {seg['posts']} posts in the last {seg['minutes']} min, "
                         f"{percent(seg['negative_share'])} negative, {seg['ratio']:g}x its usual rate; "
                         f"evidence {seg['volume_evidence']:g} nats for the volume, {seg['share_evidence']:g} for the "
                         f"share (needed {VOLUME_EVIDENCE:g} and {SHARE_EVIDENCE:g}).")
        if d.get("carried"):
            lines.append("Riding on its posts, not separate alerts: " + ", ".join(f"#{t}" for t in d["carried"]) + ".")
        return lines


def _can_hold(posts, burst_posts, usual: float, usual_upper: float, rule) -> bool:
    """Whether the shares alone allow firing or staying firing (checked before the history is read):
    the window's share still above usual, or some burst of at least min_count posts negative enough."""
    window_share = sum(p for _, p, _ in posts) / len(posts)
    if window_share > usual_upper and odds(window_share) >= 1.5 * odds(usual):
        return True
    floor, needed = rule.negative_share or 0.0, NEGATIVE_ODDS * odds(usual)
    k = 0.0
    for i, (_, p_negative, _) in enumerate(reversed(burst_posts), 1):
        k += p_negative
        if i >= rule.min_count and k / i >= max(floor, usual + MIN_SHIFT) and odds(k / i) >= needed:
            return True
    return False


def change_evidence(posts: int) -> float:
    """Nats a rise of the rate within `posts` posts must carry: more for a longer stream, which has
    more places where chance clusters its posts (a scan over every possible start)."""
    return CHANGE_EVIDENCE + math.log(max(posts, 1))


def _segment(posts, now, i: int, usual_rate: float, usual_upper: float, spread: float) -> tuple[dict, float]:
    """The evidence of the last `i` posts (posts are oldest first), as shown, and their share unrounded."""
    tail = posts[len(posts) - i:]
    hours = max((now - tail[0][0]) / HOUR, MIN_SEGMENT)
    share = sum(p for _, p, _ in tail) / i
    expected = usual_rate * hours
    return ({"posts": i, "minutes": round(hours * 60), "negative_share": round(share, 3),
             "ratio": round(i / expected, 1), "volume_evidence": round(min(poisson_llr(i, expected), 1e6), 1),
             "share_evidence": round(min(mean_evidence(share, i, usual_upper, spread), 1e6), 1)}, share)


def _burst(posts, now, usual_rate: float, usual_upper: float, usual: float, spread: float,
           rule) -> tuple[dict | None, bool]:
    """The burst and whether it fires. The burst is the hashtag's current regime: its posts since
    the likeliest change of their rate (`rate_change`), so a steady news story is measured on all
    its posts, not on its densest ten, while a campaign's friendly posts before a hijack are left
    out. It fires on enough evidence of the volume and its posts, all of them, negative enough:
    testing the share only on the burst the rate found (not on whichever segment looks most
    negative) keeps chance out."""
    if len(posts) < max(rule.min_count, 1):
        return None, False
    burst_i = rate_change([at for at, _, _ in posts], now, rule.min_count, MIN_SEGMENT, change_evidence(len(posts)))
    seg, share = _segment(posts, now, burst_i, usual_rate, usual_upper, spread)
    fires = (seg["volume_evidence"] >= VOLUME_EVIDENCE and seg["ratio"] >= rule.ratio
             and negative_enough(share, burst_i, usual, usual_upper, spread, rule.negative_share or 0.0))
    return seg, fires


def negative_enough(share: float, n: int, usual: float, usual_upper: float, spread: float, floor: float = 0.0,
                    evidence: float = SHARE_EVIDENCE) -> bool:
    """Whether n posts whose expected negatives make up `share` are clearly more negative than the
    topic's `usual` share (at most `usual_upper`; one post's P(negative) spreads by `spread`): by
    MIN_SHIFT and NEGATIVE_ODDS, above `floor`, with `evidence` nats. The share half of a
    backlash, on its own so that bench/alert_frontier.py measures exactly this test."""
    return (share >= max(floor, usual + MIN_SHIFT) and odds(share) >= NEGATIVE_ODDS * odds(usual)
            and mean_evidence(share, n, usual_upper, spread) >= evidence)
