"""ingest: receives the router's syslog and pushes each message downstream.

Sockets: a UDP listener on ``ALERTIK_BIND``:``ALERTIK_UDP_PORT`` (default
``[::]:5140``, dual-stack), and when set a TCP listener on ``ALERTIK_TCP_PORT``
and a TLS one on ``ALERTIK_TLS_PORT``; connects PUSH to
``ALERTIK_MATCHER_ADDR`` and, when forwarding is on, a second PUSH to
``ALERTIK_FORWARDER_ADDR``; binds PUB ``ALERTIK_INGEST_TAP``.

Reads: ALERTIK_BIND, ALERTIK_UDP_PORT, ALERTIK_TCP_*, ALERTIK_TLS_*,
ALERTIK_ALLOW_FROM, ALERTIK_NODE_NAME, ALERTIK_MAX_MESSAGE_BYTES,
FORWARD_HOST/FORWARD_PORT (only whether they are set). SIGHUP reads the TLS
certificate and key again.

It never blocks on a downstream stage: when a queue is full it counts the drop
and logs a throttled summary.
"""
