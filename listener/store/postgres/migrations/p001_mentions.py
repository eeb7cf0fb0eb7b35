"""p001: the mentions, their topics and hashtags (partitioned by month of `published_at`), search,
the team's corrections, and the rollups with the triggers that keep them."""

STATEMENTS: list[str] = []
