"""`volume_spike`: the topic's mentions in the window are far above the usual for this time of day."""

from __future__ import annotations

from listener.alerts.kinds import AlertKind, Observation, Scope, learning_text, topic_baseline, window_negatives
from listener.alerts.wording import fmt_count, format_window, percent
from listener.alerts.stats import HOUR, mean_evidence, negbin_sf, predictive_size

ALPHA = 1e-4  # the count must be this unlikely under the usual (over-dispersed) rate to fire,
HOLD_ALPHA = 0.01  # and at least this unlikely to stay firing (9 in an hour where 4.5 is usual: p = 0.08)
FLOOR_PER_HOUR = 0.5  # the usual rate of a quiet hour is never taken as lower than this
POSITIVE_LEAD = 0.1  # a surge whose extra mentions are this much more often positive than usual, or at
BENIGN = 0.75  # least as positive and less negative than 3/4 of the usual share, is good news (a loved launch)
WORSE = 0.1  # a surge whose extra mentions are this much more negative than usual is a turn for the worse,
WORSE_EVIDENCE = 1.35  # nats (z = 1.64) of evidence that they are, to fire (their share alone keeps it firing)


class VolumeSpike(AlertKind):
    kind = "volume_spike"
    rank = 3

    def observe(self, scope: Scope) -> list[Observation]:
        rule = self.rule
        labels = {"topic": rule.topic}
        base = topic_baseline(scope, rule.topic, rule.window, rule.baseline)
        counts = scope.topic_window(rule.topic, rule.window)
        n = counts["mentions"]
        if base.days == 0:  # no same-clock sample yet: a busy afternoon would look like a spike
            return [Observation(labels, False, n, f"learning: 0 of {base.needed} days",
                                {"count": n, "learning": True})]
        mu = max(base.expected, FLOOR_PER_HOUR * rule.window / HOUR)
        size = predictive_size(mu, base.samples)
        p = negbin_sf(int(n), mu, size)
        ratio = n / mu
        share_pos = counts["positive"] / n if n else 0.0
        share_neg = window_negatives(counts) / n if n else 0.0
        # the mentions above the usual count: more positive and less negative than usual is good news
        extra = max(n - mu, 1.0)
        extra_neg = max(window_negatives(counts) - mu * base.usual_negative, 0.0) / extra
        extra_pos = max(counts["positive"] - mu * base.usual_positive, 0.0) / extra
        good_news = (extra_pos >= base.usual_positive + POSITIVE_LEAD
                     or extra_pos >= base.usual_positive and extra_neg <= BENIGN * base.usual_negative)
        # the extra mentions' share is an estimate from n mentions less the usual ones: as if from
        # extra^2 / n posts (twenty extra among twenty-six read as fifteen). A criticised brand's
        # news day reads 10 points "worse" by chance within an hour or two; a turn shows it clearly.
        still_worse = extra_neg >= base.usual_negative + WORSE
        worse_evidence = mean_evidence(extra_neg, extra * extra / max(n, 1.0), base.usual_negative + WORSE,
                                       base.spread)
        worse = still_worse and worse_evidence >= WORSE_EVIDENCE
        surges = rule.surges or "worse"
        wanted = {"all": True, "not_better": not good_news, "worse": worse}[surges]
        holds = {"all": True, "not_better": not good_news, "worse": still_worse}[surges]
        active = n >= rule.min_count and ratio >= rule.ratio and p < ALPHA and wanted
        sustained = n >= rule.min_count / 2 and ratio >= 1 + (rule.ratio - 1) / 2 and p < HOLD_ALPHA and holds
        summary = (f"{fmt_count(n)} mentions in the last {format_window(rule.window)}, "
                   f"{ratio:.0f}x usual for this time of day" if ratio >= 2 else
                   f"{fmt_count(n)} mentions in the last {format_window(rule.window)}, {ratio:.1f}x usual")
        details = {"count": n, "window": format_window(rule.window), "expected": round(mu, 2),
                   "extra_negative_share": round(extra_neg, 3), "usual_negative_share": round(base.usual_negative, 3),
                   "baseline_samples": [round(s, 2) for s in base.samples], "days": base.days,
                   "ratio": round(ratio, 2), "p": p, "negative_share": round(share_neg, 3),
                   "positive_share": round(share_pos, 3), "usual_positive_share": round(base.usual_positive, 3),
                   "extra_positive_share": round(extra_pos, 3),
                   "worse_evidence": round(min(worse_evidence, 1e6), 2),
                   "good_news": good_news, "worse": worse, "surges": rule.surges}
        return [Observation(labels, active, n, summary, details, sustained, n * HOUR / rule.window)]

    def explain(self, obs: Observation) -> list[str]:
        d = obs.details
        if d.get("learning"):
            return [f"Mentions in the last {format_window(self.rule.window)}: {d['count']}; no day of history yet to "
                    "compare with."]
        lines = [f"Mentions in the last {d['window']}: {d['count']}; usual for this time of day: {d['expected']:g} "
                 f"(median of the same window on the {d['days']} earlier days with data: "
                 f"{', '.join(f'{s:g}' for s in d['baseline_samples'])}).",
                 f"{d['ratio']:g}x usual; that many would happen by chance with p = {d['p']:.2g} "
                 "(negative binomial: the spread of those days widens it)."]
        if d.get("good_news"):
            lines.append(f"Good news: the extra mentions are {percent(d['extra_negative_share'])} negative (usually "
                         f"{percent(d['usual_negative_share'])}) and {percent(d['extra_positive_share'])} positive "
                         f"(usually {percent(d['usual_positive_share'])}): good news, like a loved launch.")
        elif d.get("worse"):
            lines.append(f"A turn for the worse: the extra mentions are {percent(d['extra_negative_share'])} negative "
                         f"(usually {percent(d['usual_negative_share'])}).")
        return lines

    def learning(self, scope: Scope) -> str | None:
        return learning_text(scope.history_days(self.rule.window, self.rule.baseline), int(self.rule.baseline.days))
