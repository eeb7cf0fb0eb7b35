"""The digest's charts as PNG (matplotlib): mentions per hour by sentiment, net sentiment per day."""

from __future__ import annotations

import base64
import io
from datetime import date
from typing import Mapping
from zoneinfo import ZoneInfo

from listener.digest.figures import COLORS, SENTIMENTS
from listener.digest.format import fmt_net
from listener.store import parse_iso


def render_charts(digest: dict, dpi: int = 200) -> dict[str, bytes]:
    """PNG charts per topic: `TOPIC-volume` (mentions per hour over 7 days, stacked by sentiment)
    and `TOPIC-net` (net sentiment per day). Drawn at 720 x 260 CSS pixels, `dpi` / 100 times sharper."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tz = ZoneInfo(digest["timezone"])
    out: dict[str, bytes] = {}
    for t in digest["topics"]:
        hourly = t["hourly"]
        hours = [parse_iso(h) for h in hourly["hours"]]
        fig = Figure(figsize=(7.2, 2.6), dpi=100)
        ax = fig.add_subplot()
        x = list(range(len(hours)))
        bottom = [0] * len(hours)
        for s in SENTIMENTS:
            ax.bar(x, hourly[s], bottom=bottom, width=1.0, color=COLORS[s], label=s, linewidth=0)
            bottom = [b + v for b, v in zip(bottom, hourly[s])]
        day_start = next((i for i, h in enumerate(hourly["hours"]) if h >= digest["start"][:13]), 0)
        ax.axvspan(day_start - 0.5, len(hours) - 0.5, color="#eef2f7", linewidth=0, zorder=0)  # the digest's day
        ticks = [i for i, h in enumerate(hours) if h.astimezone(tz).hour == 0]
        ax.set_xticks(ticks, [hours[i].astimezone(tz).strftime("%a %d") for i in ticks])
        ax.set_xlim(-0.5, len(hours) - 0.5)
        ax.set_title(f"{t['topic']}: mentions per hour, last 7 days ({digest['timezone']})", loc="left", fontsize=10)
        ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=3)
        ax.set_ylim(0, max(max(bottom, default=0) * 1.25, 1))
        _style(ax)
        out[f"{t['topic']}-volume"] = _png(FigureCanvasAgg(fig), fig, dpi)

        fig = Figure(figsize=(7.2, 2.6), dpi=100)
        ax = fig.add_subplot()
        labels = [date.fromisoformat(d["date"]).strftime("%a %d") for d in t["daily"]]
        values = [d["net_sentiment"] or 0.0 for d in t["daily"]]
        ax.bar(labels, values, color=[COLORS["positive"] if v >= 0 else COLORS["negative"] for v in values], width=0.6)
        for i, d in enumerate(t["daily"]):
            v = d["net_sentiment"]
            ax.annotate(fmt_net(v), (i, v or 0.0), textcoords="offset points", xytext=(0, 4 if (v or 0) >= 0 else -12),
                        ha="center", fontsize=8, color="#3e4c59")
        ax.axhline(0, color="#52606d", linewidth=0.8)
        ax.set_ylim(-1.1, 1.1)
        ax.set_title(f"{t['topic']}: net sentiment per day, (positive - negative) / (positive + negative)",
                     loc="left", fontsize=10)
        _style(ax)
        out[f"{t['topic']}-net"] = _png(FigureCanvasAgg(fig), fig, dpi)
    return out


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8, colors="#52606d")
    ax.grid(axis="y", color="#e4e7eb", linewidth=0.6)
    ax.set_axisbelow(True)


def _png(canvas, fig, dpi: int) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def data_uris(charts: Mapping[str, bytes]) -> dict[str, str]:
    """Chart name -> `data:image/png;base64,...` (an HTML file that stands on its own)."""
    return {name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in charts.items()}
