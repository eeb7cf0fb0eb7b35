"""What listener prints to a terminal or a log. Text from outside is data, never markup.

Every console comes from `console()`: Rich's markup (`[red]`, `[/]`), emoji codes (`:smile:`)
and highlighting are off, and every string it renders (table cells included) has its control
characters (ESC sequences, backspace, bell, ...) made visible as U+FFFD, so a post, an author name
or a server's error can neither style, crash nor rewrite the screen. Our own styling is done with
`Text(..., style=...)`.

Piped to a file or journald, nothing is wrapped: log lines stay one line and tables take the
width their content needs (links stay whole).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import IO, Any

from rich.console import Console
from rich.text import Text

from listener.errors import redact
from listener.sources.text import CONTROLS

UNWRAPPED = 100_000  # the width of a console that is not a terminal: nothing wraps


def plain(value: Any) -> str:
    """`value` as text that shows as itself: control characters become U+FFFD, lone surrogates `?`."""
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return CONTROLS.sub("\ufffd", text)


class DataConsole(Console):
    """A Rich console that renders every string as data (see the module's docstring)."""

    def render_str(self, text: str, **kwargs) -> Text:
        kwargs.update(markup=False, emoji=False)
        return super().render_str(plain(text), **kwargs)


def console(*, stderr: bool = False, file: IO[str] | None = None, width: int | None = None,
            min_width: int | None = None) -> Console:
    """A console for data. `width` fixes it; `min_width` widens a narrow terminal (tables of
    links); off a terminal it never wraps."""
    probe = Console(stderr=stderr, file=file)
    if width is None:
        width = max(probe.width, min_width or 0) if probe.is_terminal else UNWRAPPED
    return DataConsole(stderr=stderr, file=file, width=width, markup=False, emoji=False, highlight=False,
                       soft_wrap=not probe.is_terminal)


def styled(value: Any, style: str = "") -> Text:
    """Text from outside, shown with our style: never parsed as markup."""
    return Text(plain(value), style=style)


def log_line(message: str, *, file: IO[str] | None = None, now: datetime | None = None) -> None:
    """One line of the daemon's log on stderr: a UTC time stamp and the message, never wrapped,
    secrets redacted (`listener.errors.redact`)."""
    out = console(stderr=file is None, file=file)
    stamp = f"{(now or datetime.now(timezone.utc)):%Y-%m-%d %H:%M:%S}Z "
    out.print(Text.assemble((stamp, "dim"), plain(" ".join(redact(str(message)).split()))), soft_wrap=True)
