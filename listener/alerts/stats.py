"""Small, exact statistics for alert rules: tails, likelihood ratios, bounds, rhythmic baselines.

Counts of mentions are small, bursty and rhythmic, so alert rules ask three questions with the
helpers here, each in the units of evidence it needs:
- how unusual is a count, given a baseline estimated from few days (`negbin_sf`: an over-dispersed
  Poisson whose spread widens when the baseline has few samples);
- how much evidence has a burst accumulated since it started (`poisson_llr`, `mean_evidence`:
  log likelihood ratios in nats, which add up as posts arrive, the statistic of a scan or CUSUM test);
- what is the most the usual rate or share can plausibly be (`gamma_upper`), so that
  a short history makes a rule more careful instead of more trigger-happy.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from statistics import median
from typing import Mapping, Sequence

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


def negbin_sf(k: int, mean: float, size: float) -> float:
    """P(X >= k) for a negative binomial with this mean and size (variance mean + mean^2 / size).

    `size` = inf is the Poisson distribution; a small size is a wide, over-dispersed one.
    """
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if not math.isfinite(size) or size > 1e6:
        return poisson_sf(k, mean)
    p = size / (size + mean)  # success probability
    log_p, log_q = math.log(p), math.log1p(-p)
    cdf = 0.0
    base = -math.lgamma(size)
    for x in range(k):
        cdf += math.exp(math.lgamma(x + size) + base - math.lgamma(x + 1) + size * log_p + x * log_q)
    return min(1.0, max(0.0, 1.0 - cdf))


def poisson_llr(n: float, expected: float) -> float:
    """Evidence (nats) that `n` events come from a higher rate than `expected`: the Poisson log
    likelihood ratio of the observed rate against the expected one; 0 when n <= expected."""
    if n <= expected or n <= 0:
        return 0.0
    if expected <= 0:
        return math.inf
    return n * math.log(n / expected) - (n - expected)


def rate_change(times: Sequence[datetime], end: datetime, min_after: int, min_hours: float,
                evidence: float) -> int:
    """How many of the last `times` (sorted, up to `end`) make up the current regime of a Poisson
    stream that began with the first of them: the events since the likeliest rise of its rate,
    when that rise carries `evidence` nats over one steady rate since the first event (the newer
    segment holding at least `min_after` events over at least `min_hours`); else all of them.
    A friendly campaign at 4/h hijacked at 20/h splits where the hijack begins; a steady story
    stays one regime, however its posts happen to cluster."""

    def loglik(k: int, hours: float) -> float:
        return k * math.log(k / hours) - k if k > 0 else 0.0

    n = len(times)
    if n <= max(min_after, 1):
        return n
    steady = loglik(n, max((end - times[0]) / HOUR, min_hours))
    best, best_i = steady + evidence, n
    for i in range(max(min_after, 1), n):
        at = times[n - i]
        before = (at - times[0]) / HOUR
        after = max((end - at) / HOUR, min_hours)
        if before <= 0 or i / after <= (n - i) / before:
            continue
        ll = loglik(n - i, before) + loglik(i, after)
        if ll >= best:
            best, best_i = ll, i
    return best_i


def mean_evidence(mean: float, n: float, p: float, sd: float) -> float:
    """Evidence (nats) that n values averaging `mean` (each with spread `sd`) come from a higher
    mean than `p`: the Gaussian log likelihood ratio z^2 / 2; 0 when mean <= p. For shares of
    P(negative), whose per-post spread (~0.3) is well below a yes/no label's (~0.45)."""
    if n <= 0 or mean <= p or sd <= 0:
        return 0.0
    return n * (mean - p) ** 2 / (2 * sd * sd)


def gamma_upper(shape: float, rate: float, z: float = 2.33) -> float:
    """An upper bound (about the 99th percentile for z = 2.33) of a Gamma(shape, rate) variable:
    the most a Poisson rate can plausibly be after `shape` events in `rate` units of exposure.
    Wilson-Hilferty's cube-root approximation, good to a few percent from shape 0.5 up."""
    if shape <= 0 or rate <= 0:
        return 0.0
    c = 1.0 / (9.0 * shape)
    return shape / rate * max(1.0 - c + z * math.sqrt(c), 0.0) ** 3


def odds(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return p / (1 - p)


def hour_key(dt: datetime) -> str:
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:00:00Z"


def prorated_sums(hourly: Mapping[str, Sequence[float]], start: datetime, end: datetime) -> list[float]:
    """Every column of hourly buckets summed over [start, end), prorating the partial hours at both ends."""
    totals: list[float] = []
    if end <= start:  # an empty range (history that began inside the window) sums to nothing
        return totals
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        bucket = hourly.get(hour_key(hour))
        if bucket:
            overlap = (min(end, hour + HOUR) - max(start, hour)).total_seconds() / 3600.0
            if len(totals) < len(bucket):
                totals += [0.0] * (len(bucket) - len(totals))
            for i, value in enumerate(bucket):
                totals[i] += value * overlap
        hour += HOUR
    return totals


def prorated_count(hourly: Mapping[str, Sequence[float]], start: datetime, end: datetime, index: int = 0) -> float:
    """Count in [start, end) from hourly buckets, prorating the partial hours at both ends."""
    totals = prorated_sums(hourly, start, end)
    return totals[index] if index < len(totals) else 0.0


def rhythmic_expectation(hourly: Mapping[str, Sequence[float]], now: datetime, window: timedelta,
                         days: int) -> tuple[float, list[float]]:
    """Expected count for the window ending at `now`, robust to the daily rhythm and to outliers.

    The median of the same clock window on each of the `days` earlier days (at 14:00 today we
    compare with 14:00 yesterday, the day before, ...), so quiet nights and busy afternoons each
    get their own expectation, and one unusual day (a launch, an outage) does not move the median.
    `days` counts only days with data: a new install has fewer than its baseline asks for.
    Returns (expected, the per-day samples); (0, []) without a day of history.
    """
    samples = [prorated_count(hourly, now - d * DAY - window, now - d * DAY) for d in range(1, days + 1)]
    return (float(median(samples)), samples) if samples else (0.0, [])


def predictive_size(mean: float, samples: Sequence[float], prior_cv2: float = 0.25) -> float:
    """Negative-binomial size for the next count, given day samples whose median is `mean`.

    Day-to-day spread beyond Poisson (squared coefficient of variation) is estimated from the
    samples and shrunk towards `prior_cv2` (a day's count varying by ~50%: social data is bursty);
    with D samples the mean itself is uncertain, which widens the variance by (1 + 1/D).
    """
    d = len(samples)
    if mean <= 0 or d == 0:
        return 1.0
    avg = sum(samples) / d
    cv2 = prior_cv2
    if d >= 2 and avg > 0:
        var = sum((s - avg) ** 2 for s in samples) / (d - 1)
        cv2_hat = max(var - avg, 0.0) / (avg * avg)
        cv2 = (d * cv2_hat + 2 * prior_cv2) / (d + 2)
    variance = (mean + cv2 * mean * mean) * (1 + 1 / d)
    extra = variance - mean
    return mean * mean / extra if extra > 0 else math.inf
