"""forwarder: relays every datagram ingest received, byte for byte, to another
syslog server, as alertik's Forward Mode does.

Sockets:

* binds a PULL on ``ALERTIK_FORWARDER_ADDR`` (default ``ipc://<run dir>/forwarder``);
  ingest connects its own PUSH to it and sends each ``SyslogEvent`` without
  ever blocking;
* binds a PUB tap on ``ALERTIK_FORWARDER_TAP``: the encoding of each event sent
  (UDP) or queued for sending (TCP);
* sends to ``FORWARD_HOST``:``FORWARD_PORT`` over UDP (one datagram per event)
  or, with ``FORWARD_PROTOCOL=tcp``, over one TCP connection with RFC 6587
  octet-counted frames.

Environment (read by ``alertik.common.config``):

* ``FORWARD_HOST``: IPv4 or IPv6 address or a host name, looked up again every
  ``ALERTIK_FORWARD_RESOLVE_EVERY`` seconds (default 30) and soon after errors;
* ``FORWARD_PORT``: a number or a service name; set both or neither;
* ``FORWARD_PROTOCOL``: ``udp`` (default, as alertik) or ``tcp``;
* ``ALERTIK_FORWARD_BUFFER``: frames TCP keeps while the target is away
  (default 10,000; the newest are dropped when full);
* ``ALERTIK_DRAIN_SECONDS``, ``ALERTIK_LOG_LEVEL``: as for every stage.

docs/FORWARDING.md says when to choose which protocol.
"""
