"""Parsing on every core: sources' CPU-bound parsing (feedparser is pure Python and holds the GIL) run
in worker processes, so that one process's event loop fetches while the others parse.

`ParsePool` is what `HttpClient.parse` hands a job to (the pipeline makes one and gives it to the
client: `HttpClient(settings, parser=pool)`): a
module-level function and its picklable arguments, run in one of `workers` processes, its result
(or the exception it raised) returned to the caller. The processes start on the first job (a 304
costs no process). They are forked from one fresh interpreter the pool starts for them (`python -m
listener.sources.parsing --zygote`: nothing of this process inherited: no threads, no database
connection, no main module run again), which first runs the pool's `warm_up` (the pipeline's imports
the parsers and maps the language model): each worker starts with what its first job would load,
instead of each paying ~0.25 s of CPU for it. Each reads jobs from a pipe of its own; the
interpreter they come from reaps them and tells their exit codes, and they end with it. Should it
not start (or die), or without pidfds to watch them by (Linux before 5.3), a worker is a fresh
interpreter of its own.

A job's failure is that job's own: a worker that dies on a document (a crash in a C extension,
the memory it was allowed) or takes longer than `timeout` seconds is killed and replaced, and only
that job fails, with a FetchError naming what happened; the jobs queued behind it run on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import pickle
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Any, Callable

from listener.errors import FetchError

PARSE_TIMEOUT = 60.0  # seconds one document may take to parse (a 10 MB feed takes a few)
AHEAD = 2  # jobs in a worker's pipe at once: the one it parses and the next
START_TIMEOUT = 60.0  # seconds a worker may take to start
_STOP = None  # what a worker is sent to end
_CLOSE = object()  # what a feeder thread finds in the queue to end


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _worker_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # imports as we do
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's BLAS threads: none in a one-core worker, none to fork
    return env


def _serve(conn: _Pipes) -> None:
    """A worker: run each (function, arguments) received, send back ("ok", result) or ("error", exc)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is _STOP:
            return
        fn, args = job
        try:
            reply = ("ok", fn(*args))
        except Exception as exc:  # noqa: BLE001 - returned to the caller, who decides
            reply = ("error", exc)
        try:
            conn.send(reply)
        except OSError:
            return  # the pool is gone
        except Exception as exc:  # noqa: BLE001 - a result or an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


def parse_then(fn: Callable[..., Any], args: tuple, then: Callable[..., Any], then_args: tuple) -> tuple:
    """(In a worker process.) `fn(*args)`, then `then` on its result: (result, ("ok", value) or ("error", exc))."""
    parsed = fn(*args)
    try:
        return parsed, ("ok", then(parsed, *then_args))
    except Exception as exc:  # noqa: BLE001 - the parse stands; the caller decides about the rest
        return parsed, ("error", exc)


class _Worker:
    """One worker process and the thread in this process that feeds it jobs, one at a time."""

    def __init__(self, pool: ParsePool, number: int):
        self.pool = pool
        self.process = None
        self.conn = None
        self.holding = None  # the job being sent
        self.stopping = False  # the pool closed: the jobs in hand finish, then the worker stops
        self.thread = threading.Thread(target=self._feed, name=f"parse-feeder-{number}", daemon=True)
        self.thread.start()

    def _start(self) -> None:
        jobs_r, jobs_w = os.pipe()
        replies_r, replies_w = os.pipe()
        try:
            zygote = self.pool._zygote()
            self.process = zygote.fork(jobs_r, replies_w) if zygote is not None else None
            if self.process is None:  # no process to fork from: a fresh interpreter
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "listener.sources.parsing", str(jobs_r), str(replies_w)],
                    pass_fds=(jobs_r, replies_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    env=_worker_env())
        except BaseException:
            os.close(jobs_w)
            os.close(replies_r)
            raise
        finally:
            os.close(jobs_r)
            os.close(replies_w)
        self.conn = _Pipes(Connection(replies_r, writable=False), Connection(jobs_w, readable=False))
        # started once it says so: its start is not counted in its first job's time limit
        try:
            started = self.conn.poll(START_TIMEOUT) and self.conn.recv() == "ready"
        except (EOFError, OSError):
            started = False
        if not started:
            self._kill()
            raise OSError("the parser process did not start")

    def _kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:  # stuck in the kernel: it is left, and its pipes closed
                pass
        if self.conn is not None:
            self.conn.close()
        self.process = self.conn = None

    def _feed(self) -> None:
        """Feed the worker until the pool closes. Should feeding itself fail (a bug, never a job's
        failure), the jobs it held fail with that error, the worker is replaced, and it goes on."""
        while True:
            sent: deque = deque()  # (future, fn, args) in the worker's pipe, the one it is running first
            again: deque = deque()  # sent to a worker that died before it reached them: to send first
            try:
                self._feed_jobs(sent, again)
                return
            except Exception as exc:  # noqa: BLE001 - no future may be left pending
                error = FetchError(f"could not parse the response: {type(exc).__name__}: {exc}")
                for future, *_ in (*sent, *again, *filter(None, [self.holding])):
                    if not future.done():
                        future.set_exception(error)
                self.holding = None
                try:
                    self._kill()
                except Exception:  # noqa: BLE001
                    self.process = self.conn = None

    def _feed_jobs(self, sent: deque, again: deque) -> None:
        """Keep up to AHEAD jobs in the worker's pipe (it starts the next one while this process is
        busy elsewhere), and settle each job's future from its reply, in order."""
        while True:
            while len(sent) < AHEAD and (again or not self.stopping):
                job = again.popleft() if again else self._next(block=not sent)
                if job is None:
                    break
                if job is _CLOSE:
                    self.stopping = True
                    break
                self.holding = job  # in neither deque while it is being sent
                if not self._send(job, sent):
                    again.appendleft(job)  # the worker died on the job it runs: its reply says so
                    self.holding = None
                    break
                self.holding = None
            if not sent:
                if self.stopping and not again:
                    self._stop()
                    return
                continue
            head = sent.popleft()
            kind, value = self._reply()
            if kind == "died":
                again.extendleft(reversed(sent))  # the worker died on the head job: the rest go to a new one
                sent.clear()
            self._settle(head[0], "error" if kind == "died" else kind, value)

    def _next(self, block: bool):
        """The next job of the pool's queue (None: none yet, when not waiting for one); a cancelled
        one is skipped."""
        while True:
            try:
                job = self.pool._jobs.get(block=block)
            except queue.Empty:
                return None
            if job is _CLOSE or job[0].set_running_or_notify_cancel():
                return job

    def _send(self, job: tuple, sent: deque) -> bool:
        """Send `job` to the worker (started if need be) and add it to `sent`, or settle it at once
        when it cannot travel or no worker starts; False (not sent) when the worker died with jobs in
        its pipe: the reply to the first one says so."""
        future, fn, args = job
        for attempt in (1, 2):
            if self.process is not None and self.process.poll() is not None:
                if sent:
                    return False
                self._kill()  # it died between two jobs (killed from outside): not this job's fault
            if self.process is None:
                try:
                    self._start()
                except OSError as exc:
                    self._settle(future, "error", FetchError(f"could not parse the response: {exc}"))
                    return True
            try:
                self.conn.send((fn, args))
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                self._settle(future, "error", exc)  # the job itself cannot travel: the worker never saw it
                return True
            except OSError:  # it died just now
                if sent:
                    return False
                if attempt == 2:
                    self._settle(future, "error", self._died())
                    return True
                self._kill()  # before it read the job: once more, on a new worker
                continue
            sent.append(job)
            return True
        return True  # pragma: no cover - the loop always returns

    def _reply(self) -> tuple[str, Any]:
        """The reply to the job the worker runs first: ("ok", result), ("error", exc), or ("died",
        FetchError) when it died on it or ran over the time limit (it is killed)."""
        try:
            if not self.conn.poll(self.pool.timeout):
                self._kill()
                return "died", FetchError(f"could not parse the response: parsing took longer than {self.pool.timeout:g}s")
            return self.conn.recv()
        except (EOFError, OSError):
            return "died", self._died()

    @staticmethod
    def _settle(future: concurrent.futures.Future, kind: str, value: Any) -> None:
        if kind == "ok":
            future.set_result(value)
        else:
            future.set_exception(value)

    def _stop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.send(_STOP)
                self.process.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._kill()

    def _died(self) -> FetchError:
        try:
            code = self.process.wait(5)
        except subprocess.TimeoutExpired:
            code = "none: it stopped answering"
        self._kill()
        return FetchError(f"could not parse the response: the parser process died on it (exit code {code})")


class _Zygote:
    """The fresh interpreter the workers are forked from, warmed up first (see the module's docstring);
    asked over a socket (one message a packet, the pipes' ends passed along) to fork a worker, or
    for a worker's exit code. Safe to share between the pool's feeder threads. It stays in this
    process's session and process group: in a session of its own (out of reach of a Ctrl-C in its
    first 0.05 s, before it ignores SIGINT) the kernel's autogroup scheduling gave it and its workers
    half the CPU, and a cold fetch took 0.15 s more of this process's CPU (bench/ingest.py)."""

    def __init__(self, warm_up: Callable[[], Any] | None):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "listener.sources.parsing", "--zygote", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=_worker_env())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        self.alive = True
        try:
            if self._ask(("warm", warm_up), timeout=START_TIMEOUT) != "ready":
                raise OSError("the parse processes' zygote did not start")
        except BaseException:
            self.close()
            raise

    def _ask(self, message: tuple, fds: tuple[int, ...] = (), timeout: float | None = None) -> Any:
        """Send `message` (with `fds`), return the answer; OSError when the zygote is gone or silent."""
        with self.lock:
            if not self.alive:
                raise OSError("the zygote is gone")
            try:
                self.sock.settimeout(timeout)
                socket.send_fds(self.sock, [pickle.dumps(message)], list(fds))
                answer = self.sock.recv(1 << 16)
                if not answer:
                    raise OSError("the zygote is gone")
                return pickle.loads(answer)
            except (OSError, pickle.PickleError, EOFError) as exc:
                self.alive = False  # a lost answer would answer the next question: never asked again
                raise OSError(f"the zygote failed: {exc}") from None

    def fork(self, jobs_r: int, replies_w: int) -> _Forked | None:
        """A worker serving on these pipes' ends (its own copies), or None when the zygote cannot."""
        try:
            pid = self._ask(("fork",), (jobs_r, replies_w), timeout=START_TIMEOUT)
        except OSError:
            return None
        if not isinstance(pid, int):  # it could not fork (out of memory, of processes)
            return None
        try:
            pidfd = os.pidfd_open(pid)  # the pid stays its own until the zygote reaps it
        except OSError:
            os.kill(pid, signal.SIGKILL)  # unusable: it ends on EOF anyway
            return None
        return _Forked(self, pid, pidfd)

    def exit_code(self, pid: int) -> int | str:
        """The exit code of a worker that has ended (its pidfd said so); "unknown" when the zygote cannot tell."""
        try:
            code = self._ask(("wait", pid), timeout=START_TIMEOUT)
        except OSError:
            return "unknown"
        return code if code is not None else "unknown"

    def close(self) -> None:
        with self.lock:
            self.alive = False
            self.sock.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class _Forked:
    """A worker forked by the zygote: what _Worker needs of a subprocess.Popen. Whether it has ended
    is seen on a pidfd (readable once it has: no question to the zygote for each job), which also
    carries the kill (never another process, whatever became of the pid); its exit code is the
    zygote's, which reaps it."""

    def __init__(self, zygote: _Zygote, pid: int, pidfd: int):
        self.zygote, self.pid, self.pidfd = zygote, pid, pidfd
        self.returncode: int | str | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _ended(pidfd: int, timeout: float) -> bool:
        poller = select.poll()  # not select(): a descriptor past 1023 is fine
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout * 1000))))

    def _check(self, timeout: float) -> int | str | None:
        with self._lock:
            pidfd = self.pidfd if self.returncode is None else None
        if pidfd is not None and self._ended(pidfd, timeout):  # waited for without the lock
            with self._lock:
                if self.returncode is None:
                    self.returncode = self.zygote.exit_code(self.pid)
                    os.close(self.pidfd)
        return self.returncode

    def poll(self) -> int | str | None:
        return self._check(0)

    def wait(self, timeout: float | None = None) -> int | str:
        code = self._check(3600.0 if timeout is None else timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"parse process {self.pid}", timeout or 0)
        return code

    def kill(self) -> None:
        with self._lock:
            if self.returncode is None:
                try:
                    signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _pidfds_work() -> bool:
    """Whether this kernel has pidfds (Linux 5.3), which the pool needs to watch forked workers."""
    try:
        os.close(os.pidfd_open(os.getpid()))
        return True
    except (AttributeError, OSError):
        return False


def _die_with_parent() -> None:
    """(In a forked worker.) Be killed when the zygote ends, even in an endless parse no pool times out."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _zygote(sock: socket.socket) -> None:
    """(The process workers are forked from.) Warm up, then fork a worker or tell one's exit code on request;
    whatever goes wrong with one request is answered with None, and the zygote goes on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 2)
        except OSError:
            data, fds = b"", []
        if not data:  # the pool is gone: nothing to tidy up (its workers end with it)
            os._exit(0)
        try:
            answer = _zygote_answer(pickle.loads(data), fds, sock)
        except Exception:  # noqa: BLE001 - that request failed, not the zygote
            answer = None
        finally:
            for fd in fds:
                os.close(fd)  # the worker has its own copies
        sock.send(pickle.dumps(answer))


def _zygote_answer(message: tuple, fds: list[int], sock: socket.socket) -> Any:
    if message[0] == "warm":
        try:
            if message[1] is not None:
                message[1]()
        except Exception:  # noqa: BLE001 - a warm-up that fails costs its time only: each worker loads what it needs
            pass
        return "ready"
    if message[0] == "fork":
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                sock.close()
                _die_with_parent()
                _serve(_Pipes(Connection(fds[0], writable=False), Connection(fds[1], readable=False)))
            except BaseException:  # noqa: BLE001 - never back into the zygote's loop
                code = 1
            finally:
                os._exit(code)
        return pid
    if message[0] == "wait":  # asked once its pidfd said it ended: reaped at once, or very soon
        deadline = time.monotonic() + 5
        while True:
            try:
                done, status = os.waitpid(message[1], os.WNOHANG)
            except ChildProcessError:
                return "unknown"
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.001)
    return None


class _Pipes:
    """One end of a worker's two pipes: messages in (replies for us, jobs for a worker) and out."""

    def __init__(self, incoming: Connection, outgoing: Connection):
        self.incoming, self.outgoing = incoming, outgoing

    def send(self, obj: Any) -> None:
        self.outgoing.send(obj)

    def poll(self, timeout: float) -> bool:
        return self.incoming.poll(timeout)

    def recv(self) -> Any:
        return self.incoming.recv()

    def close(self) -> None:
        self.outgoing.close()
        self.incoming.close()


class ParsePool:
    """Worker processes for parsing; `await pool.run(fn, *args)` from an event loop, `close()` at
    the end (or `with ParsePool() as pool`). Safe to share between threads and event loops."""

    def __init__(self, workers: int | None = None, timeout: float = PARSE_TIMEOUT,
                 warm_up: Callable[[], Any] | None = None):
        self.workers = workers or default_workers()
        self.timeout = timeout
        self.warm_up = warm_up  # a module-level function: run once in the process the workers are forked from
        self._forker: _Zygote | None | bool = None  # False: none could start
        self._forker_lock = threading.Lock()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._feeders: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable, *args: Any) -> concurrent.futures.Future:
        """Queue `fn(*args)`; a Future of its result."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the parse pool is closed")
            if not self._feeders:  # started on the first job
                self._feeders = [_Worker(self, n) for n in range(self.workers)]
            future: concurrent.futures.Future = concurrent.futures.Future()
            self._jobs.put((future, fn, args))
            return future

    def start(self) -> None:
        """Start the process the workers are forked from now, in the background (else it starts on
        the first job): for a caller that knows jobs are coming, so that it is warm when they do."""
        with self._lock:
            if self._closed:
                return
        threading.Thread(target=self._zygote, name="parse-zygote-start", daemon=True).start()

    def _zygote(self) -> _Zygote | None:
        """The process workers are forked from, started on the first call; None when it cannot start."""
        with self._forker_lock:
            if self._forker is None and not self._closed:
                try:
                    self._forker = _Zygote(self.warm_up) if _pidfds_work() else False
                except (OSError, pickle.PicklingError, TypeError, AttributeError):
                    self._forker = False
            return self._forker or None

    def processes(self) -> list[int]:
        """The process ids of the running workers."""
        with self._lock:
            return [w.process.pid for w in self._feeders if w.process is not None and w.process.poll() is None]

    async def run(self, fn: Callable, *args: Any) -> Any:
        """`fn(*args)` in a worker process: its result, or the exception it raised."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def close(self) -> None:
        """Stop the workers once the queued jobs are done."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            feeders = self._feeders
        for _ in feeders:
            self._jobs.put(_CLOSE)
        for feeder in feeders:
            feeder.thread.join()
        with self._forker_lock:
            forker, self._forker = self._forker, False
        if forker:
            forker.close()

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":  # python -m listener.sources.parsing JOBS_FD REPLIES_FD (a worker) | --zygote SOCKET_FD
    if sys.argv[1] == "--zygote":
        _zygote(socket.socket(fileno=int(sys.argv[2])))
    else:
        _serve(_Pipes(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)))
