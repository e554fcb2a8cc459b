"""web: what alertik is doing, for people and for Prometheus.

Runs only when ``ALERTIK_METRICS_ADDR`` is set, as a stage of its own under
supervisord, so that nothing it does can slow the pipeline. It opens no
socket towards the other stages: every second it asks ``alertik run``'s
keeper (``common/status.py: query``) for the heartbeats the stages sent it,
with their counters, and serves them:

* ``/metrics`` at ``ALERTIK_METRICS_ADDR``: every stage's metrics (the table
  in ``common/metrics.py``), the keeper's view of each stage (up, restarts,
  heartbeat age) and the build, in Prometheus's text format
  (prometheus_client).

Protected: an address other than loopback needs ``ALERTIK_WEB_PASSWORD``
(HTTP basic auth with any user name, or ``Authorization: Bearer``); on
loopback without a password only loopback host names are answered, so a
web page elsewhere cannot read it through a rebound DNS name.

Reads: ALERTIK_METRICS_ADDR, ALERTIK_WEB_PASSWORD, ALERTIK_RUN_DIR.
"""
