"""Parsing in worker processes (`sources.parsing.ParsePool`): the same mentions and the same errors as
parsing in this process, and a job that kills its worker or never ends costs only that job."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from listener.config import parse_config
from listener.errors import FetchError
from listener.pipeline import fetch_due
from listener.pipeline.match import to_rows_of, topic_specs
from listener.sources.parsing import ParsePool
from listener.sources.rss import parse_feed
from listener.store import Store
from tests.test_pipeline import rss

FEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "feeds"


# jobs for the workers: module-level, so that they travel by name
def segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def echo(value):
    return value


def refuse(message: str) -> None:
    raise FetchError(message, retry_after=30, status=429)


def unpicklable():
    return lambda: None


WARMED_IN: int | None = None  # in a worker: the process that ran mark_warm before forking it


def mark_warm() -> None:
    global WARMED_IN
    WARMED_IN = os.getpid()


def fail_warm() -> None:
    raise ValueError("a warm-up that fails")


def exit_warm() -> None:
    os._exit(3)


def who(seconds: float) -> tuple[int | None, int, int]:
    time.sleep(seconds)  # long enough for every worker to get a job
    return WARMED_IN, os.getpid(), os.getppid()


def model_loaded() -> bool:
    from listener.pipeline.language import _identifier
    return _identifier.cache_info().currsize == 1


def run_all(pool: ParsePool, *jobs) -> list:
    """Run the jobs concurrently; each one's result or exception, in order (within 90 s: a job left
    pending is a failure, not a hang)."""
    async def go():
        return await asyncio.wait_for(
            asyncio.gather(*(pool.run(fn, *args) for fn, *args in jobs), return_exceptions=True), 90)

    return asyncio.run(go())


def test_the_pool_gives_the_same_mentions_and_errors_as_parsing_here():
    """On every sample feed (shared/samples/feeds, when it is there) and a few of our own."""
    paths = sorted(p for p in FEEDS.rglob("*") if p.is_file() and p.suffix in (".xml", ".json")) if FEEDS.is_dir() else []
    documents = [(p.read_bytes(), {"Content-Type": "application/xml"}) for p in paths]
    documents += [(rss([("g1", "https://news.example/a?utm_source=x", "Acme", "Acme &amp; #AcmeFail")]),
                   {"Content-Type": "application/rss+xml; charset=utf-8", "Content-Language": "nl"}),
                  (b"<html><body>no feed</body></html>", {"Content-Type": "text/html"}), (b"", {})]
    jobs = [(parse_feed, body, httpx.Headers(headers), "https://feeds.example/f.xml") for body, headers in documents]

    def here(job):
        fn, *args = job
        try:
            return fn(*args)
        except FetchError as exc:
            return exc

    expected = [here(job) for job in jobs]
    with ParsePool(workers=2) as pool:
        got = run_all(pool, *jobs)
    assert len(got) == len(expected) == len(paths) + 3
    for want, have in zip(expected, got):
        if isinstance(want, Exception):
            assert type(have) is type(want) and str(have) == str(want)
        else:
            assert have == want
    assert any(isinstance(e, list) and e for e in expected) and any(isinstance(e, FetchError) for e in expected)


def test_a_job_that_kills_its_worker_fails_alone_and_the_pool_goes_on():
    with ParsePool(workers=1) as pool:
        results = run_all(pool, (echo, 1), (segfault,), (echo, 2), (echo, 3))
        assert results[0] == 1 and results[2:] == [2, 3]
        assert isinstance(results[1], FetchError)
        assert str(results[1]) == f"could not parse the response: the parser process died on it (exit code {-signal.SIGSEGV})"
        assert run_all(pool, (echo, "after")) == ["after"]


def test_a_worker_killed_between_jobs_is_replaced_without_failing_the_next_job():
    with ParsePool(workers=1) as pool:
        assert run_all(pool, (echo, 1)) == [1]
        [pid] = pool.processes()
        os.kill(pid, signal.SIGKILL)
        while pool.processes() == [pid]:
            time.sleep(0.01)
        assert run_all(pool, (echo, 2)) == [2]
        assert pool.processes() != [pid]


def test_workers_are_forked_from_one_process_that_warmed_up_once():
    with ParsePool(workers=2, warm_up=mark_warm) as pool:
        seen = run_all(pool, *[(who, 0.3)] * 4)
        assert len({pid for _, pid, _ in seen}) == 2  # both workers
        [(warmed, parent)] = {(warmed, parent) for warmed, _, parent in seen}
        assert warmed == parent != os.getpid()  # warmed up in their parent, not in this process nor in each
        assert run_all(pool, (segfault,), (echo, 1))[1] == 1  # one dies: its replacement comes from the same parent
        assert {p for _, _, p in run_all(pool, *[(who, 0.3)] * 4)} == {parent}


def test_the_pipelines_warm_up_loads_the_language_model_before_the_first_job():
    from listener.pipeline.match import warm_up

    with ParsePool(workers=1, warm_up=warm_up) as pool:
        assert run_all(pool, (model_loaded,)) == [True]
    with ParsePool(workers=1) as pool:
        assert run_all(pool, (model_loaded,)) == [False]  # what the job alone loads


@pytest.mark.parametrize("warm_up", [fail_warm, exit_warm])
def test_a_warm_up_that_fails_or_kills_its_process_costs_only_its_time(warm_up):
    with ParsePool(workers=2, warm_up=warm_up) as pool:
        seen = run_all(pool, *[(who, 0.3)] * 4)
    assert {warmed for warmed, _, _ in seen} == {None}
    parents = {parent for _, _, parent in seen}
    if warm_up is exit_warm:  # no process to fork from: each worker a fresh interpreter of this process
        assert parents == {os.getpid()}
    else:
        assert len(parents) == 1 and parents != {os.getpid()}


def ended(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def test_when_the_zygote_dies_its_workers_go_with_it_and_fresh_ones_take_over():
    with ParsePool(workers=1, warm_up=mark_warm) as pool:
        [(warmed, worker, zygote)] = run_all(pool, (who, 0))
        assert warmed == zygote != os.getpid()
        os.kill(zygote, signal.SIGKILL)  # its worker is killed with it (it would outlive it in an endless parse)
        deadline = time.monotonic() + 30
        while not ended(worker) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ended(worker)
        results = run_all(pool, (segfault,), (who, 0))
        assert str(results[0]) == f"could not parse the response: the parser process died on it (exit code {-signal.SIGSEGV})"
        assert results[1][2] == os.getpid()  # a fresh interpreter of this process


def test_workers_are_watched_past_descriptor_1023():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("cannot open 1,100 files here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # the pool's descriptors come after these
    try:
        with ParsePool(workers=1) as pool:
            assert run_all(pool, (echo, 1), (segfault,), (echo, 2))[::2] == [1, 2]
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_without_pidfds_the_workers_are_fresh_interpreters(monkeypatch):
    def no_pidfds(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")  # Linux before 5.3

    monkeypatch.setattr(os, "pidfd_open", no_pidfds)
    with ParsePool(workers=2, warm_up=mark_warm) as pool:
        seen = run_all(pool, *[(who, 0.2)] * 4)
    assert {(warmed, parent) for warmed, _, parent in seen} == {(None, os.getpid())}


def test_a_job_over_the_time_limit_is_killed_and_fails_alone():
    with ParsePool(workers=1, timeout=1) as pool:
        assert run_all(pool, (echo, "warm")) == ["warm"]  # the worker has started
        results = run_all(pool, (sleep, 60), (len, "next"))  # len: nothing to import in the new worker
        assert isinstance(results[0], FetchError)
        assert str(results[0]) == "could not parse the response: parsing took longer than 1s"
        assert results[1] == 4


def test_exceptions_come_back_as_raised_and_results_that_cannot_travel_fail_plainly():
    with ParsePool(workers=1) as pool:
        refused, odd = run_all(pool, (refuse, "too many requests (429) from x.example"), (unpicklable,))
    assert isinstance(refused, FetchError) and str(refused) == "too many requests (429) from x.example"
    assert (refused.retry_after, refused.status) == (30, 429)
    assert isinstance(odd, RuntimeError) and "pickle" in str(odd).lower()


def our_children() -> set[int]:
    return {int(pid) for task in Path("/proc/self/task").iterdir() for pid in (task / "children").read_text().split()}


def test_a_pool_started_ahead_warms_up_before_its_first_job_and_closes_with_nothing_left():
    before = our_children()
    pool = ParsePool(workers=1, warm_up=mark_warm)
    pool.start()  # returns at once
    deadline = time.monotonic() + 30
    while not our_children() - before and time.monotonic() < deadline:
        time.sleep(0.01)
    [zygote] = our_children() - before  # before any job
    [(warmed, _, parent)] = run_all(pool, (who, 0))
    assert warmed == parent == zygote
    pool.close()
    assert our_children() == before


def test_a_closed_pool_refuses_jobs_and_a_pool_without_jobs_starts_no_process():
    pool = ParsePool(workers=2)
    assert pool.processes() == []
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(echo, 1)


def test_a_fetch_through_the_pool_stores_what_a_fetch_without_it_stores(tmp_path, http_server, now):
    import tomllib

    feeds = {f"/f{i}.xml": rss([(f"g{i}-{j}", f"https://news{i}.example/{j}", f"Acme {j}", f"Acme news {i} {j} #acme")
                                for j in range(5)]) for i in range(10)}
    feeds["/broken.xml"] = b'{"version": "https://jsonfeed.org/version/1.1"}'
    for path, body in feeds.items():
        http_server.route(path, body=body, headers={"Content-Type": "application/rss+xml"})
    sources = "".join(f'\n[[sources]]\nname = "s{n}"\nkind = "rss"\nurl = "{http_server.url(path)}"\n'
                      for n, path in enumerate(feeds))

    def stored(db: Path, parser: ParsePool | None):
        config = parse_config(tomllib.loads(f'[database]\npath = "{db}"\n[[topics]]\nname = "acme"\nquery = "acme"\n'
                                            + sources), base_dir=tmp_path)
        with Store(db) as store:
            outcomes = {o.source: (o.ok, o.new, o.error) for o in fetch_due(config, store, now, parser=parser)}
            mentions = sorted((m["source"], m["source_id"], m["text"], m["url"], m["hashtag_list"], m["topic_list"])
                              for m in store.iter_mentions())
        return outcomes, mentions

    with ParsePool(workers=2) as pool:
        pooled = stored(tmp_path / "pooled.db", pool)
        assert pool.processes()  # it did the parsing
    assert pooled == stored(tmp_path / "here.db", None)
    outcomes, mentions = pooled
    assert len(mentions) == 50 and not outcomes["s10"][0] and outcomes["s10"][2] == "not a feed: JSON without a JSON Feed items list"


def test_a_feed_the_parser_cannot_finish_is_one_failed_source(tmp_path, http_server, now):
    import tomllib

    big = rss([(f"g{j}", f"https://big.example/{j}", f"Acme {j}", "<p>Acme " + "word " * 200 + "</p>")
               for j in range(20_000)])  # parsing it takes seconds; the limit is a fraction of one
    http_server.route("/big.xml", body=big, headers={"Content-Type": "application/rss+xml"})
    http_server.route("/small.xml", body=rss([("s1", "https://small.example/1", "Acme", "Acme news")]))
    config = parse_config(tomllib.loads(f"""
[database]
path = "{tmp_path / 'm.db'}"
[fetch]
max_bytes = 100000000
[[topics]]
name = "acme"
query = "acme"
[[sources]]
name = "big"
kind = "rss"
url = "{http_server.url('/big.xml')}"
[[sources]]
name = "small"
kind = "rss"
url = "{http_server.url('/small.xml')}"
"""), base_dir=tmp_path)
    with ParsePool(workers=1) as pool, Store(config.database.path) as store:
        # the worker imports feedparser, the matching and the language model before the timed fetch
        [warm] = run_all(pool, (parse_feed, rss([("w", "https://w.example/", "Acme", "Acme news today")]), {}, ""))
        [(rows, _)] = run_all(pool, (to_rows_of, config.sources[1], warm, topic_specs(config.topics), now, None))
        assert len(rows) == 1
        pool.timeout = 0.5
        outcomes = {o.source: o for o in fetch_due(config, store, now, parser=pool)}
        assert outcomes["small"].ok and outcomes["small"].new == 1
        assert not outcomes["big"].ok and outcomes["big"].error == "could not parse the response: parsing took longer than 0.5s"
        health = store.source_health()["big"]
        assert health.consecutive_errors == 1 and health.next_check_at > now + timedelta(minutes=1)
        assert [f["status"] for f in store.fetch_log("big")] == ["error"]


def test_a_fetchs_one_parse_and_its_matching_run_in_one_job(tmp_path, now):
    import tomllib

    from listener.pipeline.match import match_parsed
    from listener.sources.http import AFTER_PARSE, AfterParse, HttpClient

    config = parse_config(tomllib.loads('[[topics]]\nname = "acme"\nquery = "acme"\n[[sources]]\nname = "s"\n'
                                        'kind = "rss"\nurl = "https://news.example/feed.xml"\n'), base_dir=tmp_path)
    src, specs = config.sources[0], topic_specs(config.topics)
    feed = rss([("g1", "https://news.example/1", "Acme", "Acme news #acme"), ("g2", "https://news.example/2", "Other", "x")])

    async def fetch_like_a_source(parser):
        after = AfterParse(match_parsed, lambda: (src, specs, now, None))
        token = AFTER_PARSE.set(after)
        try:
            async with HttpClient(parser=parser) as http:
                first = await http.parse(parse_feed, feed, {}, "")
                second = await http.parse(parse_feed, feed, {}, "")  # a second page: parsed alone
        finally:
            AFTER_PARSE.reset(token)
        return after, first, second

    with ParsePool(workers=1) as pool:
        after, first, second = asyncio.run(fetch_like_a_source(pool))
    assert after.parsed is first and second == first and second is not first
    kind, (rows, unmatched) = after.outcome
    assert kind == "ok" and (rows, unmatched) == to_rows_of(src, first, specs, now, None)
    assert [r.source_id for r in rows] == ["g1"] and unmatched == 1 and after.sent == (src, specs, now, None)
    after, first, _ = asyncio.run(fetch_like_a_source(None))  # parsed in a thread: matched by the caller
    assert after.outcome is None and after.parsed is None and len(first) == 2
