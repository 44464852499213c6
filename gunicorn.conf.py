"""gunicorn settings for flowrun: ``gunicorn -c gunicorn.conf.py app:app``.

Environment: PORT (8000), FLOWRUN_BIND (127.0.0.1), WEB_CONCURRENCY (2),
FLOWRUN_MAX_EXECUTIONS (10000), FLOWRUN_MAX_CONFIG_BYTES. A command-line ``-b``
overrides the bind.
"""

import gc
import ipaddress
import os
import resource
import signal
import tempfile

from flowrun import logs as _logs
from flowrun import settings as _settings
from flowrun.web import memory, serving

# gevent: every open SSE stream and every running execution is a greenlet, not a
# thread. The worker monkey-patches the standard library before importing the app,
# so the app must not be preloaded (urllib3/ssl imported before patching breaks
# HTTPS and import-time locks deadlock). flowrun's worker is gunicorn's gevent
# worker accepting bursts of new streams faster (flowrun/web/serving.py).
worker_class = "flowrun.web.serving.GeventWorker"
preload_app = False
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# Each stream holds a connection; gunicorn's default of 1000 silently refuses the
# 1001st. Room for FLOWRUN_MAX_EXECUTIONS streams plus control and page requests.
_max_executions = int(os.environ.get("FLOWRUN_MAX_EXECUTIONS", "10000"))
worker_connections = _max_executions + max(100, _max_executions // 10)

bind = [
    f"{os.environ.get('FLOWRUN_BIND', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
]
if ":" in os.environ.get("FLOWRUN_BIND", "") and not bind[0].startswith("["):
    bind = [f"[{os.environ['FLOWRUN_BIND']}]:{os.environ.get('PORT', '8000')}"]

# Streams live for minutes; the gevent worker keeps notifying the arbiter while
# greenlets wait, so a normal timeout only catches a truly stuck worker.
timeout = 30
graceful_timeout = 30
keepalive = 5
backlog = 2048

accesslog = "-"
errorlog = "-"
loglevel = "info"
# FLOWRUN_LOG_FORMAT=json: error and access lines as JSON (flowrun/logs.py).
if _logs.json_wanted():
    logconfig_dict = _logs.gunicorn_logconfig()
    access_log_format = _logs.ACCESS_FORMAT

# /metrics adds up every worker's figures, kept in files in this directory
# (flowrun/metrics.py); named before anything imports prometheus_client.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Removed on exit (metrics.cleanup).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="flowrun-metrics-")

# gunicorn's logger: access lines without tokens, and without building the
# per-request atoms the format does not use.
logger_class = "flowrun.web.serving.AccessLogger"

# X-Forwarded-* headers are read by flowrun itself, from FLOWRUN_TRUSTED_PROXIES
# only (flowrun/web/proxies.py): gunicorn acts on no peer's.
forwarded_allow_ips = ""
secure_scheme_headers = {}
forwarder_headers = ""

# A body flowrun refuses is never read: the connection closes after the answer.
_max_body = int(_settings.load()["FLOWRUN_MAX_CONFIG_BYTES"])


# Every gunicorn binds /root/.gunicorn/gunicorn.ctl by default; flowrun does not use
# it, and parallel instances (tests, benchmarks) would clash over it.
control_socket_disable = True


def pre_request(worker, req):
    serving.close_after_large_body(req, _max_body)


def on_starting(server):
    from flowrun import metrics

    metrics.prepare()

    # Every stream is a file descriptor: raise the soft limit to the hard one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = worker_connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = hard if hard == resource.RLIM_INFINITY else min(hard, max(wanted, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    if soft != resource.RLIM_INFINITY and soft < wanted:
        server.log.warning(
            "open-file limit %s is below worker_connections %s: raise ulimit -n",
            soft,
            worker_connections,
        )


def on_exit(server):
    from flowrun import metrics

    metrics.cleanup()


def child_exit(server, worker):
    from flowrun import metrics

    metrics.worker_exited(worker.pid)


def post_worker_init(worker):
    # SIGTERM (a restart or a deploy): stop this worker's runs the graceful way,
    # so each completes its step in flight, sends `end` and is recorded as
    # interrupted, and the worker exits then instead of after graceful_timeout.
    # A step that would outlast graceful_timeout (a long timeout, a target that
    # trickles) is aborted a few seconds before it: the worker would be killed
    # mid-step, its runs' `end` never sent nor recorded.
    previous = signal.getsignal(signal.SIGTERM)
    grace = worker.cfg.graceful_timeout
    force_after = max(grace / 2, grace - 5)

    def stop_runs(signum, frame):
        state = getattr(worker.wsgi, "extensions", {}).get("flowrun")
        if state is not None:
            state.stop_all()
            # In a greenlet of its own: this handler runs in gevent's loop, where
            # nothing may wait.
            import gevent

            gevent.spawn_later(force_after, state.stop_all, True)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, stop_runs)
    signal.siginterrupt(signal.SIGTERM, False)

    # The cyclic garbage collector: with CPython's defaults (a young collection
    # every 700 new objects) a burst of 1,000 flows spends ~19 % of the workers'
    # CPU in it, mostly re-scanning live runs, and stalls a worker ~75 ms per full
    # collection. Objects that live as long as the worker (the app, imports) are
    # left out of collections, and young collections wait for 50,000 new objects:
    # ~3.5 % (docs/design.md). Cycles are still collected.
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)

    # A large request, response or event leaves no memory behind (memory.py).
    memory.map_large_blocks()


def when_ready(server):
    for listener in server.LISTENERS:
        address = listener.sock.getsockname()
        if not isinstance(address, tuple):  # a unix socket
            continue
        from flowrun.web.addresses import studio_url

        server.log.info("flowrun is ready: open %s", studio_url(*address[:2]))
        if os.environ.get("FLOWRUN_TOKEN"):
            continue
        exposed = not ipaddress.ip_address(address[0].split("%")[0]).is_loopback
        if exposed:
            server.log.warning(
                "!!! flowrun listens on %s without FLOWRUN_TOKEN: anyone who can "
                "reach it can make this machine send requests. Set FLOWRUN_TOKEN. !!!",
                listener,
            )
