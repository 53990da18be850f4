"""Metrics (Prometheus, via prometheus-client) and the loopback HTTP endpoint.

`/healthz`: the main loop is alive and no intake or worker thread died.
`/readyz`: the database answers and every enabled mailbox succeeded recently.
`/metrics`: counters the daemon updates as it works, plus gauges read from
the database at scrape time (so several instances report the same queue
depth, and nothing drifts after a restart).
"""

from __future__ import annotations

import errno
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from daemon.adapters.storage.stats import Stats

log = logging.getLogger("spocd.http")


class Metrics:
    """What the daemon counts while it runs."""

    def __init__(self, stats: Callable[[], Stats]) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "spocd_messages_total",
            "Inbound messages processed",
            ["intake", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "spocd_pipeline_seconds",
            "Time from acceptance to the end of processing",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.sent = Counter(
            "spocd_mail_sent_total", "Outgoing mail by result", ["result"], registry=self.registry
        )
        self.jobs = Counter(
            "spocd_jobs_total",
            "Scheduled actions by kind (SLA warnings, "
            "breaches, escalations, updates, reminders, auto-closes)",
            ["kind"],
            registry=self.registry,
        )
        self.registry.register(_DatabaseGauges(stats))


class _DatabaseGauges(Collector):
    def __init__(self, stats: Callable[[], Stats]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            stats = self.stats()
        except Exception as exc:  # the database is down: say so, not crash the scrape
            log.warning("metrics: database unavailable", extra={"error": str(exc)})
            return
        queue = GaugeMetricFamily(
            "spocd_inbound_queue", "Inbound messages by state", labels=["state"]
        )
        for state in ("queued", "failed", "quarantined"):
            queue.add_metric([state], stats.inbound.get(state, 0))
        yield queue
        outbox = GaugeMetricFamily("spocd_outbox", "Outgoing mail by state", labels=["state"])
        for state in ("pending", "failed", "suppressed"):
            outbox.add_metric([state], stats.outbox.get(state, 0))
        yield outbox
        tickets = GaugeMetricFamily(
            "spocd_tickets_open", "Open tickets by priority", labels=["priority"]
        )
        for priority in ("P1", "P2", "P3", "P4", "P5"):
            tickets.add_metric([priority], stats.open_by_priority.get(priority, 0))
        yield tickets
        boxes = GaugeMetricFamily(
            "spocd_imap_connected",
            "IMAP mailbox connected (1) or not",
            labels=["mailbox", "folder"],
        )
        for box in stats.mailboxes:
            boxes.add_metric(
                [str(box.get("mailbox")), str(box.get("folder"))], 1 if box.get("connected") else 0
            )
        yield boxes


#: Seconds a client has to send its request (and to read the reply).
HTTP_REQUEST_TIMEOUT = 10.0
#: Requests served at once (one thread each); more are closed unanswered.
HTTP_MAX_CONNECTIONS = 16


class _BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per request, but at most `max_connections` of them: a
    monitoring endpoint needs few, and each held connection costs a thread
    and a descriptor."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # full: the client sees the connection close
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def get_request(self) -> tuple[Any, Any]:
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                time.sleep(0.1)  # out of descriptors: don't spin on the readable socket
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("http request failed", extra={"peer": str(client_address)})


class HealthServer:
    """A small HTTP server on a loopback port, in a thread of its own.

    Each request has `request_timeout` seconds, and at most `max_connections`
    are served at once: half-sent requests cannot pile up threads.
    """

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        alive: Callable[[], tuple[bool, str]],
        ready: Callable[[], tuple[bool, str]],
        *,
        request_timeout: float = HTTP_REQUEST_TIMEOUT,
        max_connections: int = HTTP_MAX_CONNECTIONS,
        extra: Callable[[BaseHTTPRequestHandler], bool] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = request_timeout  # socket timeout for every read and write

            def do_GET(self) -> None:
                server.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.metrics = metrics
        self.alive = alive
        self.ready = ready
        self.extra = extra  # more paths (the SLA board): True when it answered
        self.httpd = _BoundedHTTPServer((host, port), Handler, max_connections)
        if tls is not None:
            # The handshake happens on the request's thread, under its timeout.
            self.httpd.socket = tls.wrap_socket(
                self.httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="spocd-http", daemon=True
        )

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            ok, why = self.alive()
            self._reply(request, 200 if ok else 503, (why + "\n").encode())
        elif path == "/readyz":
            ok, why = self.ready()
            self._reply(request, 200 if ok else 503, (why + "\n").encode())
        elif path == "/metrics":
            self._reply(request, 200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
        elif self.extra is None or not self.extra(request):
            self._reply(request, 404, b"not found\n")

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler,
        code: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        request.send_response(code)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


class Heartbeat:
    """The main loop beats; /healthz checks the last beat is recent."""

    def __init__(self, limit: float = 30.0) -> None:
        self.limit = limit
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self._last < self.limit
