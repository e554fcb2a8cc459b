# syntax=docker/dockerfile:1
# alertik: all stages in one container under supervisord, for linux/amd64,
# linux/arm64, linux/arm/v7 and linux/arm/v5. How it is built, what each
# layer costs, and how to build it without a registry: docs/CONTAINER.md.
#
# Everything comes from one Debian 13 (trixie) base: its Python, its builds
# of pyzmq and google-re2 (linked against its libzmq, re2 and abseil; PyPI
# has no 32-bit ARM wheels of either), the rest from requirements.lock, with
# hashes. msgspec is compiled here on every platform (no 32-bit ARM wheel on
# PyPI, no 32-bit build in Debian). The final image starts from scratch and
# holds only what mkroot.py copies out of the builder, the dependencies and
# alertik.

# debian:trixie-slim, the multi-platform index of its 2026-08-24 build
# (Debian 13.6). A local build without a registry overrides it with
# --build-arg DEBIAN=... (contrib/build-image.sh).
ARG DEBIAN=docker.io/library/debian:trixie-slim@sha256:d7e12182ce18b85b93007c1dedf31f2d29e01ccf3182cc4017c709b6259bc132

# ---- builder: Debian's Python, pyzmq and re2, and what msgspec needs to build
FROM ${DEBIAN} AS builder
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-pip python3-dev gcc libc6-dev binutils \
        python3-setuptools python3-setuptools-scm \
        python3-zmq python3-re2 busybox tzdata \
    && rm -rf /var/lib/apt/lists/*

# ---- runtime: the interpreter, the libraries and nothing else, in /rootfs
FROM builder AS runtime
COPY contrib/image/mkroot.py /usr/local/sbin/mkroot.py
RUN python3 /usr/local/sbin/mkroot.py /rootfs \
    && python3 -m compileall -q -j 0 -s /rootfs -p / \
        --invalidation-mode unchecked-hash \
        /rootfs/usr/lib/python3*

# ---- deps: the locked dependencies in a venv that also sees Debian's
# pyzmq and re2; only the lock file is copied, so a source change does not
# invalidate this stage. Behind a TLS-inspecting proxy, give its CA bundle
# as the build secret pip-cert.
FROM builder AS deps
RUN python3 -m venv --system-site-packages --without-pip /opt/alertik
COPY requirements.lock /tmp/requirements.lock
RUN --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi \
    && python3 -m pip --python /opt/alertik/bin/python install \
        --no-cache-dir --no-compile --no-deps --ignore-installed \
        --require-hashes --only-binary :all: --no-binary msgspec \
        --no-build-isolation -r /tmp/requirements.lock \
    && rm -rf /opt/alertik/lib/python3*/site-packages/*/tests \
    && find /opt/alertik -name '*.so' -exec strip --strip-unneeded {} + \
    && python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        /opt/alertik/lib

# ---- app: alertik itself, installed under /app with the venv's paths
FROM deps AS app
WORKDIR /src
# alertik/supervisord.conf is a link to this one.
COPY pyproject.toml README.md supervisord.conf ./
COPY alertik ./alertik
COPY common ./common
COPY ingest ./ingest
COPY matcher ./matcher
COPY notify ./notify
COPY forwarder ./forwarder
COPY web ./web
RUN python3 -m pip --python /opt/alertik/bin/python install \
        --no-cache-dir --no-compile --no-deps --no-build-isolation \
        --root /app . \
    && python3 -m compileall -q -j 0 -s /app -p / \
        --invalidation-mode unchecked-hash /app/opt/alertik/lib

# ---- verify: the three parts together, inside the runtime root alone, import
# everything (a missing library or module fails the build, not a router)
FROM app AS verify
COPY --from=runtime /rootfs/ /verify/
COPY contrib/image/verify.py /verify/tmp/verify.py
RUN mkdir -p /verify/opt && cp -a /opt/alertik /verify/opt/ \
    && cp -a /app/. /verify/ \
    && chroot /verify /opt/alertik/bin/python /tmp/verify.py \
    && chroot /verify /opt/alertik/bin/alertik --help >/dev/null \
    && rm -rf /verify

# ---- the image
FROM scratch
COPY --from=runtime /rootfs/ /
COPY --from=deps /opt/alertik/ /opt/alertik/
COPY --from=verify /app/ /

ENV PATH=/opt/alertik/bin:/usr/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUTF8=1 \
    ALERTIK_RUN_DIR=/run/alertik \
    ALERTIK_STATE_DIR=/var/lib/alertik

USER 10001:10001
WORKDIR /var/lib/alertik
VOLUME ["/var/lib/alertik"]
# UDP always; TCP with ALERTIK_TCP_PORT=5140, TLS with ALERTIK_TLS_PORT=6514.
EXPOSE 5140/udp 5140/tcp 6514/tcp
# alertik health fails once a stage has not answered for 5 s: with a check
# every 3 s, a frozen stage makes the container unhealthy within about 8.5 s.
# Each check is a Python process, which is why it is not more often; the start
# period covers a slow start on a busy 32-bit router. docs/CONTAINER.md.
HEALTHCHECK --interval=3s --timeout=5s --start-period=30s --retries=1 \
    CMD ["alertik", "health"]
# supervisord stops the stages one after another (each may take up to its
# stopwaitsecs of 10 s): give `docker stop -t 45` or a stop grace period that
# covers their sum.
STOPSIGNAL SIGTERM
CMD ["alertik", "run"]
