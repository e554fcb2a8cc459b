"""notify: delivers alerts to Telegram, Slack, Teams, Discord, generic webhooks,
ntfy, Gotify, Pushover, Matrix, e-mail and Apprise, and carries out the
RouterOS address-list action (docs/DESTINATIONS.md).

Sockets:
  * binds PULL on ALERTIK_NOTIFY_ADDR: ``Alert`` messages pushed by the matcher;
  * binds PUB on ALERTIK_NOTIFY_TAP: one ``Delivery`` per outcome (delivered,
    retrying, failed, discarded), for ``alertik tap``.

Every accepted alert is written to a durable outbox (sqlite3 under
ALERTIK_STATE_DIR) before it is sent, and removed only once the service took
it or refused it for good. One worker thread per destination sends, paced
for its service, retrying with backoff; a backlog becomes digests.

Environment (read by ``common/config.py``):
  * TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID, TELEGRAM_API_URL;
  * SLACK_WEBHOOK_URL, DISCORD_WEBHOOK_URL, GENERIC1..4_WEBHOOK_URL;
  * TEAMS_WEBHOOK_URL, TEAMS_WEBHOOK_FORMAT (workflows or legacy);
  * ALERTIK_<SERVICE>_* for one ntfy, Gotify, Pushover, Matrix, e-mail or
    Apprise destination, and ..._FILE for every secret;
  * ALERTIK_TLS_INSECURE, ALERTIK_HTTP_CONNECT_TIMEOUT, ALERTIK_HTTP_READ_TIMEOUT,
    ALERTIK_RETRY_MAX_DELAY;
  * ALERTIK_OUTBOX_MAX, ALERTIK_OUTBOX_MAX_AGE, ALERTIK_STATE_DIR;
  * ALERTIK_DIGEST_AFTER, ALERTIK_GENERIC_DIGEST;
  * ALERTIK_NOTIFY_ADDR, ALERTIK_NOTIFY_TAP, ALERTIK_DRAIN_SECONDS.

See docs/NOTIFY.md for the behaviour and its knobs.
"""
