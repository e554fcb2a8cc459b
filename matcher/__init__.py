"""matcher: tries every rule on every message and turns matches into alerts.

Sockets: binds PULL ``ALERTIK_MATCHER_ADDR`` (events from ingest) and PUB
``ALERTIK_MATCHER_TAP`` (the alerts it emits); connects PUSH to
``ALERTIK_NOTIFY_ADDR``.

Reads: ENV_EVENTS, EVENTn_*, STATIC_EVENTS_ENABLED, STATIC_EVENTn_NOTIFIER,
ALERTIK_TIME_SUFFIX, ALERTIK_LOG_FILE, ALERTIK_LOG_MAX_BYTES,
ALERTIK_LOG_BACKUPS.

It also writes the log archive: one line per received message.
"""
