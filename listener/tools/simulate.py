"""A generated stream of mentions for a fictional brand: daily rhythm, a loved launch, a hijack.

Used by `listener demo` and by the tests: texts come from this project's own templates and word
lists (English and Dutch), never from real posts. Deterministic for a given seed.

The story (times relative to `start`, a midnight UTC):
- every day: ordinary chatter about the brand, quiet at night, busy in the afternoon; mostly
  neutral and positive, some complaints;
- day `launch_day` 10:00-14:00: a product launch people love (#burgerlyvegan), lots of positive posts;
- day `hijack_day` 10:00: the brand starts the campaign hashtag #burgerlystories (a few posts an
  hour, friendly); from `hijack_hour` it is hijacked: hundreds of horror stories an hour, mostly
  negative, for three hours, then it dies down.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

BRAND = "Burgerly"
CAMPAIGN = "burgerlystories"
LAUNCH_TAG = "burgerlyvegan"

ORDINARY = {
    "en": {
        "positive": ["Lunch at Burgerly again, their {item} never disappoints", "Burgerly staff in {city} were so friendly today",
                     "Honestly the {item} at Burgerly is the best in town", "Great service at Burgerly {city}, quick and tasty"],
        "neutral": ["Is Burgerly in {city} open on Sunday?", "Burgerly has a new {item} on the menu this week",
                    "Meeting friends at Burgerly {city} later", "Does the Burgerly app still give points for the {item}?"],
        "negative": ["Waited forty minutes at Burgerly {city}, cold {item}, not happy", "My Burgerly order was wrong again, annoying",
                     "Burgerly {item} was soggy and overpriced today"],
    },
    "nl": {
        "positive": ["Weer lunch bij Burgerly, de {item} is altijd lekker", "Super vriendelijk personeel bij Burgerly {city} vandaag",
                     "De {item} van Burgerly is echt de beste van de stad"],
        "neutral": ["Is Burgerly in {city} op zondag open?", "Burgerly heeft deze week een nieuwe {item} op de kaart",
                    "Straks met vrienden naar Burgerly {city}"],
        "negative": ["Veertig minuten gewacht bij Burgerly {city}, koude {item}, balen", "Mijn bestelling bij Burgerly was weer fout, irritant"],
    },
}
LAUNCH = {
    "en": ["The new Burgerly vegan burger is amazing, I love it! #burgerlyvegan", "Finally a vegan burger that tastes great, well done Burgerly #burgerlyvegan",
           "Just tried the #burgerlyvegan and wow, delicious", "Burgerly nailed it with the vegan burger, so good #burgerlyvegan"],
    "nl": ["De nieuwe vegan burger van Burgerly is geweldig! #burgerlyvegan", "Eindelijk een vegan burger die echt lekker is, top Burgerly #burgerlyvegan"],
}
CAMPAIGN_FRIENDLY = {
    "en": ["Share your #burgerlystories and win a free meal, says Burgerly", "My first date was at Burgerly, cute memories #burgerlystories"],
    "nl": ["Deel je #burgerlystories en win een gratis maaltijd", "Mijn eerste date was bij Burgerly, leuke herinnering #burgerlystories"],
}
HIJACK = {
    "en": ["#burgerlystories I found a hair in my burger and they just laughed at me, disgusting",
           "#burgerlystories got food poisoning after eating at Burgerly {city}, worst night of my life",
           "My #burgerlystories: rude staff, dirty tables and a raw burger. Never again",
           "#burgerlystories the fries were stale and the manager shouted at my kids. Horrible",
           "#burgerlystories they charged me twice and refused a refund, terrible company",
           "Here is one of my #burgerlystories: a cockroach on the counter in {city}. Gross"],
    "nl": ["#burgerlystories haar in mijn burger en ze lachten me uit, walgelijk",
           "#burgerlystories voedselvergiftiging na Burgerly {city}, vreselijk",
           "Mijn #burgerlystories: onbeschoft personeel, vieze tafels en een rauwe burger. Nooit meer"],
}
ITEMS = {"en": ["cheeseburger", "fries", "milkshake", "chicken wrap"], "nl": ["cheeseburger", "friet", "milkshake", "kipwrap"]}
CITIES = ["Utrecht", "Amsterdam", "Rotterdam", "Eindhoven", "Groningen"]
AUTHORS = [f"{a}{b}" for a in ("sam", "noor", "jip", "alex", "lisa", "daan", "emma", "tom") for b in ("", "_nl", "88", "x")]


@dataclass(frozen=True)
class SimPost:
    id: str
    published_at: datetime
    text: str
    language: str
    kind: str  # ordinary / launch / campaign / hijack
    author: str
    likes: int
    reposts: int


def hourly_rate(hour: int) -> float:
    """Ordinary mentions per hour by hour of day: quiet nights, busy afternoons."""
    if hour < 6:
        return 2
    if hour < 9:
        return 5
    if hour < 17:
        return 12
    if hour < 22:
        return 9
    return 4


def generate(start: datetime, days: int = 7, *, launch_day: int = 3, hijack_day: int = 5, hijack_hour: int = 14,
             hijack_per_hour: int = 240, seed: int = 42) -> list[SimPost]:
    """Posts in published order."""
    rng = random.Random(seed)
    posts: list[SimPost] = []

    def add(at: datetime, text: str, lang: str, kind: str, likes: int = 0) -> None:
        posts.append(SimPost(f"sim-{len(posts)}", at, text, lang, kind, rng.choice(AUTHORS), likes + rng.randint(0, 5),
                             rng.randint(0, 3)))

    def fill(template: str, lang: str) -> str:
        return template.format(item=rng.choice(ITEMS[lang]), city=rng.choice(CITIES))

    for day in range(days):
        for hour in range(24):
            base = start + timedelta(days=day, hours=hour)
            for _ in range(_poisson(rng, hourly_rate(hour))):
                lang = "nl" if rng.random() < 0.35 else "en"
                sentiment = rng.choices(["positive", "neutral", "negative"], [4, 5, 2])[0]
                add(base + timedelta(seconds=rng.randint(0, 3599)), fill(rng.choice(ORDINARY[lang][sentiment]), lang), lang, "ordinary")
            if day == launch_day and 10 <= hour < 14:
                for _ in range(_poisson(rng, 90)):
                    lang = "nl" if rng.random() < 0.3 else "en"
                    add(base + timedelta(seconds=rng.randint(0, 3599)), rng.choice(LAUNCH[lang]), lang, "launch", likes=20)
            if day == hijack_day and 10 <= hour < hijack_hour:
                for _ in range(_poisson(rng, 3)):
                    lang = "nl" if rng.random() < 0.3 else "en"
                    add(base + timedelta(seconds=rng.randint(0, 3599)), rng.choice(CAMPAIGN_FRIENDLY[lang]), lang, "campaign")
            if day == hijack_day and hijack_hour <= hour < hijack_hour + 4:
                # three hours at full force, then the fourth hour fades out
                rate = hijack_per_hour if hour < hijack_hour + 3 else hijack_per_hour // 10
                for _ in range(_poisson(rng, rate)):
                    lang = "nl" if rng.random() < 0.25 else "en"
                    friendly = rng.random() < 0.12
                    pool = CAMPAIGN_FRIENDLY if friendly else HIJACK
                    add(base + timedelta(seconds=rng.randint(0, 3599)), fill(rng.choice(pool[lang]), lang), lang,
                        "campaign" if friendly else "hijack", likes=30)
    posts.sort(key=lambda p: p.published_at)
    return [SimPost(f"sim-{i}", p.published_at, p.text, p.language, p.kind, p.author, p.likes, p.reposts)
            for i, p in enumerate(posts)]


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method (lam is small here) for a Poisson draw from a seeded generator."""
    import math

    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def hijack_onset(start: datetime, hijack_day: int = 5, hijack_hour: int = 14) -> datetime:
    return start + timedelta(days=hijack_day, hours=hijack_hour)
