"""``alertik keygen``: make a CURVE key pair for the links between hosts.

Prints the secret key as ``ALERTIK_CURVE_SECRET_KEY='...'`` for the host
that keeps it and the public key as ``ALERTIK_CURVE_PUBLIC_KEY='...'``, which
no stage reads: it is what the peers put in ``ALERTIK_CURVE_SERVER_KEY`` (when
this host binds) or in ``ALERTIK_CURVE_ALLOWED_CLIENTS`` (when this host
connects). The values are in single quotes, so the output can be sourced by a
shell (``. ./keys.env``) and read by systemd's ``EnvironmentFile=`` and
docker compose's ``env_file``, all of which take the quoted text literally:
Z85 keys hold ``&``, ``*``, ``<``, ``(`` and friends, which a shell would
otherwise act on, and never a quote. ``alertik keygen --public`` reads a
secret key on stdin (bare, quoted, or keygen's own output) and prints its
public key alone.
"""

from __future__ import annotations

import argparse
import sys

import zmq

# Z85 keys may contain these, and they are special inside double quotes: in
# RouterOS ($ substitutes, ? asks for help), in docker-compose files ($
# interpolates) and in an interactive shell (! recalls history). Key pairs
# using them are drawn again: about 2 of the secret key's 256 bits are given
# up for keys that paste anywhere without escaping.
AWKWARD = frozenset(b"$?!")
# The variable each host keeps its secret key in.
SECRET_PREFIX = "ALERTIK_CURVE_SECRET_KEY="
# Draws before giving up; about 1 pair in 18 qualifies, so 10,000 draws
# failing would mean a broken random source.
MAX_DRAWS = 10_000


def pasteable(key: bytes) -> bool:
    """Whether a Z85 key contains none of the characters that need escaping."""
    return not AWKWARD.intersection(key)


def new_keypair() -> tuple[str, str]:
    """A fresh (public, secret) Z85 pair in which both keys paste as they are."""
    for _ in range(MAX_DRAWS):
        public, secret = zmq.curve_keypair()
        if pasteable(public) and pasteable(secret):
            return public.decode(), secret.decode()
    raise RuntimeError("no pasteable CURVE key pair in 10,000 draws")


def public_of(secret: str) -> str:
    """The public key of a Z85 secret key; ValueError if it is not one."""
    text = secret.strip()
    if len(text) != 40:
        raise ValueError("a CURVE secret key is 40 Z85 characters")
    try:
        return zmq.curve_public(text.encode("ascii")).decode()
    except (zmq.ZMQError, UnicodeEncodeError):
        raise ValueError("not a Z85 CURVE secret key") from None


def secret_from(text: str) -> str:
    """The secret key in text: a bare key, or keygen's output or an env file."""
    lines = [line.strip() for line in text.splitlines()]
    for line in lines:
        if line.startswith(SECRET_PREFIX):
            # Only this exact prefix comes off: "=" is also a Z85 digit.
            return unquote(line[len(SECRET_PREFIX) :])
    bare = next((line for line in lines if line and not line.startswith("#")), "")
    return unquote(bare)


def quote(value: str) -> str:
    """value in single quotes, as sh, systemd and docker compose read them.

    Inside single quotes nothing is special to any of them; a quote itself
    (never part of a Z85 key) is closed, escaped and reopened, as sh does.
    """
    return "'" + value.replace("'", "'\\''") + "'"


def unquote(value: str) -> str:
    """A value without the single or double quotes around it, if it has them."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def render(public: str, secret: str) -> str:
    """The lines keygen prints for one key pair: sh, systemd and compose read them."""
    return (
        "# alertik CURVE key pair. Keep the secret key on this host only.\n"
        f"{SECRET_PREFIX}{quote(secret)}\n"
        "# The public key is not secret: give it to the peers, as\n"
        "# ALERTIK_CURVE_SERVER_KEY if this host binds (the server), or in\n"
        "# ALERTIK_CURVE_ALLOWED_CLIENTS if this host connects (e.g. a router).\n"
        f"ALERTIK_CURVE_PUBLIC_KEY={quote(public)}\n"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alertik keygen",
        description="Print a new CURVE key pair for ALERTIK_CURVE_* as env lines.",
    )
    parser.add_argument(
        "--public",
        action="store_true",
        help="read a secret key on stdin and print its public key",
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not zmq.has("curve"):
        print("error: this libzmq was built without CURVE", file=sys.stderr)
        return 1
    if args.public:
        secret = secret_from(sys.stdin.read())
        try:
            print(public_of(secret))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    public, secret = new_keypair()
    sys.stdout.write(render(public, secret))
    return 0
