"""alertik: a syslog server and event notifier for MikroTik RouterOS.

The pipeline, one process per stage, wired with ZeroMQ PUSH/PULL:

    router --UDP/TCP--> ingest --> matcher --> notify --> Telegram/Slack/...
                              \\
                               --> forwarder --> existing syslog server

* ingest receives datagrams and pushes them on without ever blocking;
* matcher writes the log archive and turns rule matches into alerts;
* notify keeps alerts in a durable outbox and delivers them;
* forwarder relays every raw datagram, byte for byte;
* web (only when configured) serves /metrics and the status page.

The stage code lives in the top-level folders ``common/``, ``ingest/``,
``matcher/``, ``notify/``, ``forwarder/`` and ``web/``, installed as
``alertik.<name>``.
"""

__version__ = "0.1.0"
