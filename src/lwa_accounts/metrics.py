"""Every Prometheus metric the service exports, defined once (docs/operations.md lists them).

The web edge (``web/observe.py``, ``web/metrics.py``), the Amazon client's hook
(``lwa/calls.py``), the throttle and the database pool record into these; ``/metrics``
renders them. Labels come from bounded sets only (route templates, never paths; error
codes, never messages), so the number of series stays fixed.

Several worker processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set before this module is
first imported, prometheus_client keeps every value in memory-mapped files in that
directory and ``/metrics`` (on any worker) adds them up. Gauges say how: pool gauges sum
over live workers, the active-session count is the most recent any live worker measured.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "lwa_accounts"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# In multiprocess mode the values live in files and /metrics builds its own registry;
# REGISTRY then only keeps the metric objects from registering twice.
REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds: a page or API call is milliseconds; an argon2 sign-in ~50-200 ms; Amazon ~1 s.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
AMAZON_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
# One message's SMTP exchange: tens of milliseconds on a relay nearby, seconds when slow.
MAIL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

http_requests = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ("method", "route", "status"),
    registry=REGISTRY,
)
http_request_duration = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method, route template "
    "and status.",
    ("method", "route", "status"),
    buckets=HTTP_BUCKETS,
    registry=REGISTRY,
)
amazon_calls = Counter(
    f"{PREFIX}_amazon_calls",
    "HTTP requests to Login with Amazon (each attempt, retries included), by endpoint and outcome.",
    ("endpoint", "outcome"),
    registry=REGISTRY,
)
amazon_call_duration = Histogram(
    f"{PREFIX}_amazon_call_duration_seconds",
    "Time until Amazon's answer (its status line and headers), by endpoint and outcome.",
    ("endpoint", "outcome"),
    buckets=AMAZON_BUCKETS,
    registry=REGISTRY,
)
amazon_retries = Counter(
    f"{PREFIX}_amazon_retries",
    "Attempts that repeated an Amazon request after a failed one (only GETs are retried).",
    ("endpoint",),
    registry=REGISTRY,
)
sign_ins = Counter(
    f"{PREFIX}_sign_ins",
    "Sign-in attempts by method (password, amazon, device) and outcome (signed_in, created, "
    "link_required, registration_required, refused:<error code>).",
    ("method", "outcome"),
    registry=REGISTRY,
)
throttle_refusals = Counter(
    f"{PREFIX}_throttle_refusals",
    "Attempts refused by a rate limit, by kind (password, register, user_code, device_start).",
    ("kind",),
    registry=REGISTRY,
)
mail_sent = Counter(
    f"{PREFIX}_mail_sent",
    "Messages the SMTP server accepted, by kind (the template: verify_email, test...).",
    ("kind",),
    registry=REGISTRY,
)
mail_retried = Counter(
    f"{PREFIX}_mail_retried",
    "Failed delivery attempts that will be tried again later, by kind.",
    ("kind",),
    registry=REGISTRY,
)
mail_failed = Counter(
    f"{PREFIX}_mail_failed",
    "Messages given up on, by kind and reason (refused: a permanent 5xx refusal; "
    "exhausted: the last attempt failed; unreadable: its sealed body does not open).",
    ("kind", "reason"),
    registry=REGISTRY,
)
mail_send_duration = Histogram(
    f"{PREFIX}_mail_send_duration_seconds",
    "Time of one message's SMTP exchange, by outcome (sent, retry, failed).",
    ("outcome",),
    buckets=MAIL_BUCKETS,
    registry=REGISTRY,
)
mail_unsettled = Gauge(
    f"{PREFIX}_mail_unsettled",
    "Messages in the outbox neither sent nor failed yet (counted by the delivery worker "
    "after each batch, at most every 30 s).",
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
active_sessions = Gauge(
    f"{PREFIX}_active_sessions",
    "Sessions neither revoked nor expired (counted at most every "
    "LWA_ACCOUNTS_METRICS_SESSIONS_REFRESH_SECONDS per process).",
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
db_pool_in_use = Gauge(
    f"{PREFIX}_db_pool_connections_in_use",
    "Database connections checked out of the pool (all live workers).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
db_pool_overflow = Gauge(
    f"{PREFIX}_db_pool_overflow",
    "Connections open beyond the pool's size (all live workers; negative: not yet opened).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
db_pool_size = Gauge(
    f"{PREFIX}_db_pool_size",
    "The pool's configured size (all live workers).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode, or None (one process)."""
    return os.environ.get(MULTIPROC_ENV) or None
