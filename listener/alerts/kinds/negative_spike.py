"""`negative_spike`: the topic's negative share in the window is far above its usual share."""

from __future__ import annotations

from listener.alerts.kinds import SHARE_SD, AlertKind, Observation, Scope, topic_baseline, window_negatives
from listener.alerts.wording import fmt_count, format_window, percent
from listener.alerts.stats import HOUR, mean_evidence

EVIDENCE = 6.9  # nats (z = 3.7) against the most the usual share plausibly is
MIN_HISTORY = 30  # mentions in the baseline before the usual share is known


class NegativeSpike(AlertKind):
    kind = "negative_spike"
    rank = 2

    def observe(self, scope: Scope) -> list[Observation]:
        rule = self.rule
        labels = {"topic": rule.topic}
        base = topic_baseline(scope, rule.topic, rule.window, rule.baseline)
        counts = scope.topic_window(rule.topic, rule.window)
        n = counts["mentions"]
        k = window_negatives(counts)
        share = k / n if n else 0.0
        if base.mentions < MIN_HISTORY:
            return [Observation(labels, False, share, f"learning: {fmt_count(base.mentions)} of {MIN_HISTORY} mentions "
                                "of history", {"count": n, "learning": True})]
        usual = base.usual_negative
        needed = max(rule.negative_share, min(rule.ratio * usual, (1 + usual) / 2))
        # SHARE_SD, not the topic's spread: a whole topic's hour is many voices, and a confident
        # model's narrow spread would make a dozen mentions 'overwhelming' (the demo cried wolf)
        evidence = mean_evidence(share, n, base.negative_upper, SHARE_SD)
        active = n >= rule.min_count and share >= needed and evidence >= EVIDENCE
        # clearly gone otherwise; a quarter of the evidence (z = 1.9) was met by nine ordinary
        # mentions of an evening now and then, holding an incident open for hours after its end
        sustained = share >= usual + (needed - usual) / 2 and evidence >= EVIDENCE / 2
        summary = (f"{fmt_count(n)} mentions in the last {format_window(rule.window)}, {percent(share)} negative "
                   f"(usually {percent(usual)})")
        details = {"count": n, "negative": round(k, 1), "window": format_window(rule.window),
                   "negative_share": round(share, 3), "usual_negative_share": round(usual, 3),
                   "usual_upper": round(base.negative_upper, 3), "needed_share": round(needed, 3),
                   "evidence": round(evidence, 1), "history_mentions": round(base.mentions)}
        return [Observation(labels, active, share, summary, details, sustained, n * HOUR / rule.window)]

    def explain(self, obs: Observation) -> list[str]:
        d = obs.details
        if d.get("learning"):
            return [f"Not enough history yet to know the topic's usual negative share ({obs.summary})."]
        return [f"Negative: {percent(d['negative_share'])} of {d['count']} mentions in the last {d['window']} "
                f"(the model's expected negatives); usual for the topic as the model scores it: "
                f"{percent(d['usual_negative_share'])} over {d['history_mentions']} mentions, at most "
                f"{percent(d['usual_upper'])}.",
                f"Needed: {percent(d['needed_share'])}; evidence {d['evidence']:g} nats against the usual share "
                f"(needed {EVIDENCE:g})."]

    def learning(self, scope: Scope) -> str | None:
        base = topic_baseline(scope, self.rule.topic, self.rule.window, self.rule.baseline)
        return None if base.mentions >= MIN_HISTORY else f"learning: {fmt_count(base.mentions)} of {MIN_HISTORY} mentions"
