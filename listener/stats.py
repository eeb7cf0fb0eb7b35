"""Small, exact statistics for alert rules: Poisson and binomial upper tails, rhythmic baselines."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from statistics import median
from typing import Mapping

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def poisson_sf(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    # sum the upper tail term by term from k (log space), until the terms vanish
    log_term = -lam + k * math.log(lam) - math.lgamma(k + 1)
    total = 0.0
    i = k
    while True:
        term = math.exp(log_term)
        total += term
        i += 1
        log_term += math.log(lam) - math.log(i)
        if term < 1e-17 * max(total, 1e-300) and i > lam:
            break
        if i - k > 100_000:
            break
    return min(1.0, total)


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k, n + 1):
        total += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
    return min(1.0, total)


def hour_key(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:00:00Z")


def prorated_count(hourly: Mapping[str, tuple[int, int]], start: datetime, end: datetime, index: int = 0) -> float:
    """Count in [start, end) from hourly buckets, prorating the partial hours at both ends."""
    total = 0.0
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        overlap = (min(end, hour + HOUR) - max(start, hour)).total_seconds()
        if overlap > 0:
            total += hourly.get(hour_key(hour), (0, 0))[index] * overlap / 3600.0
        hour += HOUR
    return total


def rhythmic_expectation(hourly: Mapping[str, tuple[int, int]], now: datetime, window: timedelta,
                         baseline: timedelta) -> tuple[float, list[float]]:
    """Expected count for the window ending at `now`, robust to the daily rhythm and to outliers.

    With a baseline of a day or more: the median of the same clock window on each earlier day of
    the baseline (at 14:00 today we compare with 14:00 yesterday, the day before, ...), so quiet
    nights and busy afternoons each get their own expectation, and one unusual day (a launch, an
    outage) does not move the median. With a shorter baseline: the mean rate over the baseline.
    Returns (expected, the per-day samples).
    """
    days = int(baseline / DAY)
    if days >= 1:
        samples = [prorated_count(hourly, now - d * DAY - window, now - d * DAY) for d in range(1, days + 1)]
        return float(median(samples)), samples
    start = now - window - baseline
    total = prorated_count(hourly, start, now - window)
    return total * (window / baseline), [total]
