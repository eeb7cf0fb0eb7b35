"""The web dashboard, `listener serve`: the pages a team opens every morning, on the same store and
the same figures as the digest and the CLI.

- `app`: `create_app`, the Starlette app (pages, static files, security layers);
- `security`: users' scrypt hashes, login, CSRF, the security headers (a strict CSP);
- `render`: what routes work with, the autoescaped templates and their filters;
- `filters`: time ranges and mention filters read from a URL and written back;
- `overview`, `topic`, `mentions`, `corrections`, `incidents`, `sources`, `auth`: one module per group of pages;
- `templates/`, `static/` (our CSS and JS, and vendored htmx and uPlot with their licences).
"""

from listener.web.app import create_app

__all__ = ["create_app"]
