"""The TLS server side of syslog over TLS: certificate files to an SSLContext.

``server_context()`` turns ``ALERTIK_TLS_CERT``, ``ALERTIK_TLS_KEY`` and
``ALERTIK_TLS_CLIENT_CA`` into the ``ssl.SSLContext`` ingest's TLS listener
hands to each new connection, or raises ``ConfigError`` naming the variable
whose file is missing, unreadable or wrong. ``config.load()`` calls it, so
``alertik check`` refuses what ingest could not use, and ingest calls it again
on SIGHUP to pick up a renewed certificate.

What the context allows, and why:

* TLS 1.2 and 1.3. RouterOS offers TLS 1.2 (our RouterOS notes), RFC 5425
  asks for at least 1.2, and older versions are broken;
* no renegotiation. RouterOS never asks for it, and a client that asks again
  and again would make us do handshakes for nothing (OpenSSL 3 refuses a
  client's request by default; the option makes 1.1.1 refuse it too);
* a client certificate only when ``ALERTIK_TLS_CLIENT_CA`` is set: then every
  client must present one issued by those CAs. RouterOS never presents one,
  so this is for listeners that only relays (rsyslog, syslog-ng) use.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import stat

from alertik.common.converters import ConfigError

# RouterOS's TLS client speaks 1.2; anything older is refused.
MIN_VERSION = ssl.TLSVersion.TLSv1_2
CERT = "ALERTIK_TLS_CERT"
KEY = "ALERTIK_TLS_KEY"
CLIENT_CA = "ALERTIK_TLS_CLIENT_CA"


class _Encrypted(Exception):
    """OpenSSL asked for the key's passphrase: the key file is encrypted."""


def _no_passphrase() -> str:
    # Without a callback OpenSSL would ask for the passphrase on the terminal
    # and hang a stage that has none.
    raise _Encrypted


def _readable(variable: str, path: str) -> None:
    """ConfigError naming variable unless path is a regular file we can read
    (opening a FIFO would wait for a writer; /dev/zero would never end)."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(variable, f"{path} is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise ConfigError(variable, f"{path} is not a regular file")
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(
            variable, f"cannot read {path}: {exc.strerror or exc}"
        ) from None


def _certificates_in(variable: str, path: str, what: str) -> None:
    """ConfigError naming variable unless path holds PEM certificates."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=path)
    except (ssl.SSLError, ValueError):
        raise ConfigError(
            variable, f"{path} holds no PEM {what}; {_MAKE_ONE}"
        ) from None


_MAKE_ONE = "make a certificate and key with `alertik cert`"


def server_context(cert: str, key: str = "", client_ca: str = "") -> ssl.SSLContext:
    """A server context for the certificate in cert and its key (in key, or in
    cert when key is empty); ConfigError naming the variable at fault."""
    _readable(CERT, cert)
    _certificates_in(CERT, cert, "certificate")
    if key:
        _readable(KEY, key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MIN_VERSION
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    try:
        ctx.load_cert_chain(cert, key or None, password=_no_passphrase)
    except _Encrypted:
        raise ConfigError(
            KEY if key else CERT,
            f"the private key in {key or cert} is encrypted; alertik needs it "
            "without a passphrase (openssl pkey -in KEY -out KEY.plain)",
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            problem = (
                f"the key in {key or cert} does not belong to the certificate in {cert}"
            )
        else:  # OpenSSL says only "PEM lib"
            problem = f"{key or cert} holds no PEM private key"
        raise ConfigError(KEY if key else CERT, f"{problem}; {_MAKE_ONE}") from None
    if client_ca:
        _readable(CLIENT_CA, client_ca)
        _certificates_in(CLIENT_CA, client_ca, "CA certificates")
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def fingerprint(cert: str) -> str:
    """SHA-256 fingerprint of the first certificate in the PEM file cert, as
    RouterOS's ``/certificate print detail`` shows it (hex, lower case)."""
    with open(cert, encoding="ascii", errors="replace") as f:
        text = f.read()
    begin = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", begin)
    if begin < 0 or end < 0:
        return "unknown"
    der = ssl.PEM_cert_to_DER_cert(text[begin : end + len("-----END CERTIFICATE-----")])
    return hashlib.sha256(der).hexdigest()


def describe(cert: str, key: str = "", client_ca: str = "") -> str:
    """One line for the log: which files, which certificate, client checks."""
    shown = f"certificate {os.path.abspath(cert)} (sha256 {fingerprint(cert)})"
    if key:
        shown += f", key {os.path.abspath(key)}"
    if client_ca:
        shown += f", client certificates required (CAs in {client_ca})"
    return shown
