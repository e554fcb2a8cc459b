# alertik: all stages in one container under supervisord.
# Debian slim, not Alpine: google-re2 (the regex engine) ships manylinux
# wheels for x86_64 and aarch64 only.
FROM python:3.12-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ALERTIK_RUN_DIR=/run/alertik \
    ALERTIK_STATE_DIR=/var/lib/alertik

WORKDIR /src
COPY pyproject.toml README.md supervisord.conf ./
COPY alertik ./alertik
COPY common ./common
COPY ingest ./ingest
COPY matcher ./matcher
COPY notify ./notify
COPY forwarder ./forwarder
RUN pip install --no-cache-dir . \
    && rm -rf /src \
    && mkdir -p /log /var/lib/alertik /run/alertik

WORKDIR /
VOLUME ["/var/lib/alertik"]
EXPOSE 5140/udp
# supervisord stops the stages one after another (each may take up to its
# stopwaitsecs of 10 s): give `docker stop -t 45` or a stop grace period that
# covers their sum.
STOPSIGNAL SIGTERM
CMD ["alertik", "run"]
