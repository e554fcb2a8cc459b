"""web: what alertik is doing, for people and for Prometheus.

Runs only when ``ALERTIK_WEB_ADDR`` or ``ALERTIK_METRICS_ADDR`` is set, as a
stage of its own under supervisord, so that nothing it does can slow the
pipeline. No stage opens a socket for it: it asks ``alertik run``'s keeper
(``common/status.py: query``) for the heartbeats the stages sent it, with
their counters, and serves them:

* ``/metrics`` at ``ALERTIK_METRICS_ADDR`` (and at ``ALERTIK_WEB_ADDR``):
  every stage's metrics (the table in ``common/metrics.py``), the keeper's
  view of each stage (up, restarts, heartbeat age) and the build, in
  Prometheus's text format (prometheus_client);
* ``/`` at ``ALERTIK_WEB_ADDR``: the status page (``page.py``, its figures
  gathered by ``view.py``): per-router messages and alerts over the last hour
  (``history.py``, from the same counters), destinations, the last alerts
  (read from the matcher's and notify's taps, ``recent.py``) and the stages;
* ``/workbench``: pasted lines through ``alertik test --json`` in a
  subprocess (``workbench.py`` says why).

Protected: an address other than loopback needs ``ALERTIK_WEB_PASSWORD``
(HTTP basic auth with any user name, or ``Authorization: Bearer``); on
loopback without a password only loopback host names are answered, so a
web page elsewhere cannot read it through a rebound DNS name.

Sockets: SUB to ``ALERTIK_MATCHER_TAP`` and ``ALERTIK_NOTIFY_TAP`` (only with
the page); a datagram socket to the keeper's ``keeper.sock``.

Reads: ALERTIK_WEB_ADDR, ALERTIK_METRICS_ADDR, ALERTIK_WEB_PASSWORD,
ALERTIK_RUN_DIR, the taps, ALERTIK_SILENCE_AFTER (to mark silent routers).
"""
