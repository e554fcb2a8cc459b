"""``alertik cert``: a self-signed certificate and key for the TLS listener.

``alertik cert NAME [NAME ...]`` writes ``alertik-tls.crt`` and
``alertik-tls.key`` (mode 600) for alertik's host names and addresses, then
prints the ``ALERTIK_TLS_*`` lines for alertik and the RouterOS commands that
import the certificate and point a logging action at alertik over TLS with
``check-certificate=yes``. RouterOS checks the chain only, not the name (our
RouterOS notes), so the self-signed certificate is its own CA; other clients
(rsyslog, ``openssl s_client -verify_hostname``) also check that a NAME is the
one they connect to, so give every name and address they use.

The certificate and key are made by the ``openssl`` command. Python's ``ssl``
module can load them but cannot make keys or certificates; ``openssl`` is
already on every host with CA certificates (Debian's ca-certificates needs it,
so the image has it), where a library such as ``cryptography`` would be a
compiled dependency for a command run once in years.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile

from alertik.common.converters import ConfigError
from alertik.common.tls import fingerprint, server_context

CERT_FILE = "alertik-tls.crt"
KEY_FILE = "alertik-tls.key"
# Ten years: a self-signed certificate is renewed by hand, on the router too,
# so it should not expire under anyone's feet; --days for less.
DEFAULT_DAYS = 3650
MAX_DAYS = 36500
# RFC 5425's port for syslog over TLS; above 1024, so no root needed.
DEFAULT_PORT = 6514
# RSA 2048: every TLS client verifies it, RouterOS's included.
KEY_SPEC = "rsa:2048"
# X.509 allows 64 characters in a common name; longer names go in the SAN only.
CN_MAX = 64
# openssl takes well under a second; a minute means it hangs.
OPENSSL_TIMEOUT = 60

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


class CertError(Exception):
    """Why no certificate was made; str() is one line. usage: the command line
    asked for something impossible (exit 2), rather than the host failing."""

    def __init__(self, problem: str, usage: bool = False) -> None:
        super().__init__(problem)
        self.usage = usage


def subject_names(names: list[str]) -> list[str]:
    """subjectAltName entries (``IP:...``, ``DNS:...``) for names; CertError
    for one that is neither an IP address nor a host name."""
    entries = []
    for name in names:
        try:
            entries.append(f"IP:{ipaddress.ip_address(name.strip('[]'))}")
            continue
        except ValueError:
            pass
        if len(name) > 253 or not _HOST_NAME.fullmatch(name):
            raise CertError(
                f"{name!r} is neither an IP address nor a host name", usage=True
            )
        entries.append(f"DNS:{name.rstrip('.')}")
    return entries


def openssl_config(names: list[str]) -> str:
    """An openssl req configuration for a self-signed server certificate."""
    common = names[0] if len(names[0]) <= CN_MAX else "alertik"
    return (
        "[req]\n"
        "prompt = no\n"
        "distinguished_name = dn\n"
        "x509_extensions = ext\n"
        "[dn]\n"
        f"CN = {common}\n"
        "O = alertik\n"
        "[ext]\n"
        # Its own CA: RouterOS trusts the imported certificate as the root.
        "basicConstraints = critical, CA:TRUE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid:always\n"
        f"subjectAltName = {', '.join(subject_names(names))}\n"
    )


def make(names: list[str], out_dir: str, days: int, force: bool) -> tuple[str, str]:
    """Write the certificate and key for names into out_dir; their paths."""
    if not names:
        raise CertError("give at least one host name or address of alertik", True)
    config = openssl_config(names)
    out_dir = os.path.abspath(out_dir)
    cert, key = os.path.join(out_dir, CERT_FILE), os.path.join(out_dir, KEY_FILE)
    if not force:
        for path in (cert, key):
            if os.path.lexists(path):
                raise CertError(f"{path} exists; use --force to replace it", True)
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertError(
            "the openssl command is not installed; install it "
            "(apt-get install openssl) and run alertik cert again"
        )
    try:
        # Made in a private directory beside the targets, then moved into
        # place: nobody sees a half-written key, or one with a loose mode.
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".alertik-cert-") as tmp:
            conf = os.path.join(tmp, "req.cnf")
            with open(conf, "w", encoding="ascii") as f:
                f.write(config)
            new_cert, new_key = os.path.join(tmp, "crt"), os.path.join(tmp, "key")
            argv = [openssl, "req", "-x509", "-newkey", KEY_SPEC, "-nodes"]
            argv += ["-sha256", "-days", str(days), "-config", conf]
            argv += ["-keyout", new_key, "-out", new_cert]
            try:
                done = subprocess.run(
                    argv, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT
                )
            except subprocess.TimeoutExpired:
                raise CertError(
                    f"openssl did not finish in {OPENSSL_TIMEOUT} s"
                ) from None
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                raise CertError(f"openssl failed: {last}")
            os.chmod(new_key, 0o600)
            os.chmod(new_cert, 0o644)
            server_context(new_cert, new_key)  # what ingest will do with them
            os.replace(new_key, key)
            os.replace(new_cert, cert)
    except OSError as exc:
        raise CertError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    except ConfigError as exc:
        raise CertError(f"openssl made an unusable pair: {exc.problem}") from None
    return cert, key


def instructions(cert: str, key: str, names: list[str], port: int) -> str:
    """What to set in alertik and type on the router, for the pair made."""
    address = next((n.strip("[]") for n in names if _is_address(n)), "ALERTIK-ADDRESS")
    return (
        f"# Wrote {cert} (certificate) and {key} (private key, mode 600).\n"
        f"# Certificate fingerprint (sha256): {fingerprint(cert)}\n"
        "\n"
        "# alertik: set these, then start (or restart) alertik. To renew,\n"
        "# run alertik cert --force again and send alertik run SIGHUP.\n"
        f"ALERTIK_TLS_PORT={port}\n"
        f"ALERTIK_TLS_CERT={cert}\n"
        f"ALERTIK_TLS_KEY={key}\n"
        "\n"
        "# RouterOS (7.18 or later, with remote-protocol=tls): copy the\n"
        f"# certificate to the router first (Winbox: Files; or scp {CERT_FILE}\n"
        "# admin@ROUTER:), then import it and send the log over TLS, checked:\n"
        f'/certificate import file-name={CERT_FILE} passphrase=""\n'
        f"/system logging action add name=alertik-tls target=remote "
        f"remote={address} \\\n"
        f"    remote-port={port} remote-protocol=tls remote-log-format=cef "
        "check-certificate=yes\n"
        "/system logging add topics=info action=alertik-tls\n"
        "/system logging add topics=error action=alertik-tls\n"
        "# /certificate print detail must show the fingerprint above.\n"
    )


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _days(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"use a number of days, 1 to {MAX_DAYS}")
    return int(text)


def _port(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError("use a port number, 1 to 65535")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alertik cert",
        description="Make a self-signed certificate and key for ALERTIK_TLS_PORT "
        "and print the RouterOS commands that use it.",
    )
    parser.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="alertik's host names and IP addresses, as senders reach it "
        "(the first is the certificate's common name)",
    )
    parser.add_argument(
        "--out", default=".", help="directory for the two files (default: here)"
    )
    parser.add_argument(
        "--days",
        type=_days,
        default=DEFAULT_DAYS,
        help=f"validity in days (default {DEFAULT_DAYS})",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"the TLS port in the printed settings (default {DEFAULT_PORT})",
    )
    parser.add_argument("--force", action="store_true", help="replace existing files")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        cert, key = make(args.names, args.out, args.days, args.force)
    except CertError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if exc.usage else 1
    sys.stdout.write(instructions(cert, key, args.names, args.port))
    return 0
