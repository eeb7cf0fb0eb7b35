"""The dashboard's routes through Starlette's test client, on a real SQLite file: what each page and
JSON endpoint shows, the security headers, CSRF refusals, logins beyond loopback, hostile post text."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from listener.cli import cli
from listener.store import Store
from listener.web import create_app
from listener.web.overview import overview_figures
from listener.web.security import CSP, UsersError, hash_password, load_users, parse_users, trusted_hosts, verify_password
from tests.webdata import HOSTILE_TEXT, NOW, build

HTML = {"accept": "text/html"}


@pytest.fixture
def site(tmp_path):
    config, ids = build(tmp_path)
    app = create_app(config, lambda: Store(config.database.path), secret_key="test-key", clock=lambda: NOW)
    return TestClient(app), config, ids


def csrf_of(client: TestClient) -> str:
    page = client.get("/mentions", headers=HTML).text
    return page.split('"X-CSRF-Token": "')[1].split('"')[0]


def test_every_answer_carries_the_security_headers(site):
    client, _, _ = site
    for url in ("/", "/api/topic/acme", "/static/app.js", "/nowhere"):
        r = client.get(url)
        assert r.headers["content-security-policy"] == CSP, url
        assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
        assert (r.headers["x-content-type-options"], r.headers["x-frame-options"]) == ("nosniff", "DENY")
    page = client.get("/", headers=HTML).text
    assert "<script>" not in page and " style=" not in page and " onclick" not in page  # nothing inline


def test_the_overview_shows_todays_figures_incidents_and_failing_sources(site):
    client, config, _ = site
    page = client.get("/", headers=HTML).text
    assert '<a href="/topic/acme">acme</a>' in page and '<a href="/topic/globex">globex</a>' in page
    assert "blog failing" in page  # blog feeds globex and fails since the evening before
    assert "Incident 1 · acme" in page  # closed today: in the recent ones
    row = page.split('data-topic="acme"')[1].split("</tr>")[0]
    assert '<td class="num">17</td>' in row and "6 · 3 · 8" in row  # the day's acme mentions until 20:00, with the hostile one
    assert "forum failing" in row  # forum failed that day
    assert "<polyline points=" in row  # the sparkline
    with Store(config.database.path) as store:  # failing sources without their mentions counted (a read of them all)
        assert [(s["name"], s["mentions"]) for s in overview_figures(store, config, NOW)["failing_sources"]] == [
            ("blog", None)]


def test_the_topic_chart_comes_from_the_rollups_with_its_markers(site):
    client, _, _ = site
    data = client.get("/api/topic/acme?from=2026-11-21&to=2026-11-21").json()
    assert data["zone"] == "Europe/Amsterdam" and len(data["hours"]) == 24
    assert sum(data["negative"]) + sum(data["neutral"]) + sum(data["positive"]) == 17
    assert data["day_mentions"] == [17] and len(data["net"]) == 1
    kinds = {(m["kind"], m["label"]) for m in data["markers"]}
    assert ("incident", "incident 1") in kinds and ("outage", "forum down") in kinds
    assert client.get("/api/topic/nope").status_code == 404
    page = client.get("/topic/acme?range=7d", headers=HTML).text
    assert 'data-chart="hourly"' in page and "#fail" in page and "Share of voice" in page
    assert client.get("/topic/acme?range=1y", headers=HTML).status_code == 400
    assert client.get("/mentions/new?after_id=abc").status_code == 400  # a bad id is the caller's error, not a crash


def test_the_stream_filters_by_hashtag_query_and_time_and_pages_new_ones(site):
    client, _, ids = site
    page = client.get("/mentions?hashtag=%23Fail", headers=HTML).text
    assert page.count('<article class="mention') == 6  # 4 on the day, 2 the day before
    assert 'class="hashtag" href="/mentions?hashtag=fail"' in page
    only = client.get("/mentions?hashtag=fail&q=support", headers=HTML).text
    assert only.count('<article class="mention') == 1 and "Acme support ignored me for a week" in only
    assert "Sat 21 Nov 10:05 CET" in only  # in the display zone, named
    assert "50 likes, 20 replies" in only and "negative 90%" in only
    bad = client.get('/mentions?q=%22unclosed', headers=HTML)
    assert bad.status_code == 400 and "error" in bad.text
    newer = client.get(f"/mentions/new?after_id={ids['hostile'] - 1}", headers=HTML).text
    assert newer.count('<article class="mention') == 1 and 'hx-swap-oob="true"' in newer
    assert f"after_id={ids['hostile']}" in newer  # the poller asks for what comes after it next
    assert client.get(f"/mentions/new?after_id={ids['hostile']}").text.count("<article") == 0


def test_every_filtered_list_exports_as_csv_and_json_lines(site):
    client, _, _ = site
    r = client.get("/mentions/export.csv?hashtag=fail")
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 6 and all("fail" in row["hashtags"].split() for row in rows)
    lines = client.get("/mentions/export.jsonl?topic=globex").text.splitlines()
    assert len(lines) == 3 and all(json.loads(x)["topics"] == ["globex"] for x in lines)
    assert client.get("/mentions/export.xml").status_code == 404


def test_hostile_post_text_is_shown_as_text_and_never_linked(site):
    client, _, ids = site
    page = client.get("/mentions?hashtag=pwn", headers=HTML).text
    assert "<script>window.pwned" not in page and "onerror=" not in page.replace("onerror=&#34;", "")
    assert "&lt;script&gt;window.pwned=true&lt;/script&gt; [/] [bold red]x[/]" in page
    assert "&lt;b onmouseover=&#34;window.pwned=true&#34;&gt;eve&lt;/b&gt;" in page
    assert "javascript:" not in page.split("<main>")[1].replace("[link](javascript:alert(1))", "")
    assert 'href="javascript' not in page and "open post" not in page  # no link at all for a javascript: URL
    assert HOSTILE_TEXT.split()[0] == "acme"


def test_an_incident_shows_why_its_curve_examples_and_notifications(site):
    client, _, ids = site
    page = client.get(f"/incident/{ids['incident']}", headers=HTML).text
    assert "#fail: 4 posts, 100% negative" in page and "ratio" in page and "12.0" in page
    assert "[listener] FIRING acme #fail" in page and "Sat 21 Nov 11:01 CET" in page  # sent, in the zone
    assert "Acme support ignored me for a week" in page  # the most engaged #fail post of the hour before it opened
    curve = client.get(f"/api/incident/{ids['incident']}").json()
    assert curve["label"] == "#fail" and sum(curve["mentions"]) == 4 + 2  # the day's and the day before's
    assert client.get("/incident/999", headers=HTML).status_code == 404
    assert client.get("/incident/x", headers=HTML).status_code == 404
    assert f'href="/incident/{ids["incident"]}"' in client.get("/incidents", headers=HTML).text


def test_the_sources_page_has_the_health_table_and_last_errors(site):
    client, _, _ = site
    page = client.get("/sources", headers=HTML).text
    assert "timed out after 20s" in page and "HTTP 500 from 127.0.0.1" in page and "hijack" in page


def test_a_post_without_the_sessions_csrf_token_is_refused(site):
    client, _, _ = site
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", headers={"x-csrf-token": "forged"}).status_code == 403
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    token = csrf_of(client)
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    token = csrf_of(client)
    assert client.post("/logout", headers={"x-csrf-token": token}, follow_redirects=False).status_code == 303
    other = TestClient(client.app)  # another browser: its own session, the token is not its
    assert other.post("/logout", headers={"x-csrf-token": token}).status_code == 403


def test_with_users_every_page_needs_a_login(tmp_path):
    config, _ = build(tmp_path)
    users = parse_users(f"# the team\nana:{hash_password('correct horse')}\n", "test")
    client = TestClient(create_app(config, lambda: Store(config.database.path), secret_key="k", users=users,
                                   clock=lambda: NOW))
    r = client.get("/", headers=HTML, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert client.get("/api/topic/acme").status_code == 401 and client.get("/mentions/export.csv").status_code == 401
    assert client.get("/static/app.js").status_code == 200
    form = client.get("/login", headers=HTML).text
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/login", data={"name": "ana", "password": "wrong", "csrf_token": token}).status_code == 401
    assert client.post("/login", data={"name": "bob", "password": "correct horse", "csrf_token": token}).status_code == 401
    assert client.post("/login", data={"name": "ana", "password": "correct horse"}).status_code == 403  # no token
    ok = client.post("/login", data={"name": "ana", "password": "correct horse", "csrf_token": token},
                     follow_redirects=False)
    assert ok.status_code == 303 and client.get("/", headers=HTML).status_code == 200
    assert "Log out ana" in client.get("/", headers=HTML).text


def test_password_hashes_users_and_the_serve_command(tmp_path, monkeypatch):
    encoded = hash_password("s3cret")
    assert encoded.startswith("scrypt$16384$8$1$") and verify_password("s3cret", encoded)
    assert not verify_password("s3cret ", encoded) and not verify_password("s3cret", None)
    assert hash_password("s3cret") != encoded  # salted
    with pytest.raises(UsersError, match="line 1: expected name:scrypt"):
        parse_users("ana:plaintext", "LISTENER_USERS")
    users_file = tmp_path / "users"
    users_file.write_text(f"ana:{encoded}\n")
    assert load_users({"LISTENER_USERS_FILE": str(users_file)}) == {"ana": encoded}
    assert load_users({"LISTENER_USERS": f"bo:{encoded}", "LISTENER_USERS_FILE": str(users_file)}) == {"bo": encoded}
    with pytest.raises(UsersError, match="cannot read it"):
        load_users({"LISTENER_USERS_FILE": str(tmp_path / "missing")})

    line = CliRunner().invoke(cli, ["user-hash", "ana"], input="pw\npw\n")
    assert line.exit_code == 0
    name, hashed = line.output.strip().splitlines()[-1].split(":", 1)
    assert name == "ana" and verify_password("pw", hashed)

    config, _ = build(tmp_path / "site")
    monkeypatch.delenv("LISTENER_USERS", raising=False)
    monkeypatch.delenv("LISTENER_USERS_FILE", raising=False)
    refused = CliRunner().invoke(cli, ["--config", str(tmp_path / "site" / "config.toml"), "serve", "--host", "0.0.0.0"])
    assert refused.exit_code == 1 and "lets other machines in: set LISTENER_USERS" in refused.output


def test_a_correction_is_stored_with_who_and_when_and_moves_the_chart(site):
    client, _, ids = site
    mid = ids["Acme launch is brilliant"]  # positive, 00:30 on the day
    day = "/api/topic/acme?from=2026-11-21&to=2026-11-21"
    before = client.get(day).json()
    token = csrf_of(client)
    assert client.post(f"/mention/{mid}/correct", data={"sentiment": "negative"}).status_code == 403  # no token
    r = client.post(f"/mention/{mid}/correct", data={"sentiment": "negative", "csrf_token": token},
                    headers={"hx-request": "true"})
    assert r.status_code == 200 and "corrected to negative by local" in r.text and f'id="mention-{mid}"' in r.text
    after = client.get(day).json()
    assert (sum(after["negative"]), sum(after["positive"])) == (sum(before["negative"]) + 1, sum(before["positive"]) - 1)
    gone = ids["Acme did it again"]
    r = client.post(f"/mention/{gone}/correct", data={"not_relevant": "acme", "csrf_token": token},
                    follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"/mentions#mention-{gone}")  # without htmx
    assert sum(client.get(day).json()["day_mentions"]) == sum(before["day_mentions"]) - 1  # it left the counts
    assert client.post("/mention/999999/correct", data={"sentiment": "neutral", "csrf_token": token}).status_code == 400
    assert client.post(f"/mention/{mid}/correct", data={"sentiment": "angry", "csrf_token": token}).status_code == 400
    listed = client.get("/corrections", headers=HTML).text
    assert "Acme launch is brilliant" in listed and "not relevant (acme)" in listed and "Sat 21 Nov 20:00 CET" in listed
    tsv = client.get("/corrections/export.tsv").text.splitlines()
    assert tsv[0].split("\t")[:2] == ["text", "label"] and any(line.startswith("Acme launch is brilliant\t0") for line in tsv)


def test_without_users_only_this_machines_own_names_are_answered(tmp_path):
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 must get nothing."""
    config, _ = build(tmp_path)
    app = create_app(config, lambda: Store(config.database.path), secret_key="k", clock=lambda: NOW,
                     hosts=trusted_hosts("127.0.0.1", {}))
    assert TestClient(app, base_url="http://127.0.0.1:8080").get("/", headers=HTML).status_code == 200
    assert TestClient(app, base_url="http://localhost:8080").get("/api/topic/acme").status_code == 200
    rebound = TestClient(app, base_url="http://evil.example:8080")
    assert rebound.get("/", headers=HTML).status_code == 400 and rebound.get("/api/topic/acme").status_code == 400
    assert trusted_hosts("0.0.0.0", {"ana": "scrypt$..."}) is None  # with users, the login guards every page
