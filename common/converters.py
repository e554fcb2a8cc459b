"""Converters for settings: text in, a value or a one-line reason out.

Each converter is a small frozen Struct holding its bounds: calling it turns a
variable's text into a value or raises ``Invalid`` with a one-line reason that
never echoes a secret; ``describe()`` is what README.md lists as its values.
``Setting.read`` (settings.py) adds the variable's name, as ``ConfigError``.
Numbers are ASCII digits only: ``int()`` and ``float()`` would also take
'５１４０', '٣' and '1_000', which nobody means as a number here.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

# Linux's sockaddr_un.sun_path holds 108 bytes, the last one a NUL.
SUN_PATH_MAX = 107
# The longest socket name under the run directory: the forwarder's tap (the
# others, such as listen.sock where `alertik run` hands over the UDP socket,
# are shorter).
LONGEST_SOCKET_NAME = "tap-forwarder"
RUN_DIR_MAX = SUN_PATH_MAX - len(os.sep + LONGEST_SOCKET_NAME)


class ConfigError(Exception):
    """A configuration value that cannot be used; str() is one line."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class Frozen(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base for configuration structs: immutable, keyword-only, no extras."""


class ConfigWarning(Frozen, frozen=True, kw_only=True):
    """A configuration that starts, but probably not as its author meant."""

    variable: str
    problem: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.problem}"


class Invalid(ValueError):
    """A converter's one-line reason for refusing a text (without the name)."""


def check_utf8(variable: str, text: str) -> str:
    """text, or a ConfigError when it holds bytes that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # No value in the message: it may be a token or a webhook URL.
        raise ConfigError(
            variable,
            f"is not UTF-8 text (a stray byte at character {exc.start + 1}); "
            "write the value in UTF-8",
        ) from None
    return text


# ASCII digits only: int() and float() also take '５１４０', '٣' and '1_000',
# which are not numbers to someone writing a configuration.
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def whole_number(text: str) -> int | None:
    """text as an int when it is ASCII digits (spaces around allowed), else None."""
    text = text.strip()
    return int(text) if _WHOLE.fullmatch(text) else None


def split_list(text: str) -> tuple[str, ...]:
    """A comma- or space-separated list, without empty items."""
    return tuple(item for item in re.split(r"[\s,]+", text.strip()) if item)


def _shown(number: float) -> str:
    """A bound as a person writes it: 604800, not 6.048e+05."""
    if number == int(number):
        return f"{int(number)}"
    return f"{number:g}"


# --- converters: text -> value, or Invalid; describe() is the README's values


class Converter(Protocol):
    def __call__(self, text: str) -> Any: ...

    def describe(self) -> str: ...


class Integer(Frozen, frozen=True, kw_only=True):
    lo: int
    hi: int

    def __call__(self, text: str) -> int:
        value = whole_number(text)
        if value is None:
            raise Invalid(f"{text!r} is not a whole number")
        if not self.lo <= value <= self.hi:
            raise Invalid(f"{value} is out of range; use {self.lo} to {self.hi}")
        return value

    def describe(self) -> str:
        return f"{self.lo} to {self.hi}"


class Number(Frozen, frozen=True, kw_only=True):
    lo: float
    hi: float

    def __call__(self, text: str) -> float:
        if not _DECIMAL.fullmatch(text.strip()):
            raise Invalid(f"{text!r} is not a number")
        value = float(text)
        if not self.lo <= value <= self.hi:
            raise Invalid(
                f"{_shown(value)} is out of range; "
                f"use {_shown(self.lo)} to {_shown(self.hi)}"
            )
        return value

    def describe(self) -> str:
        return f"{_shown(self.lo)} to {_shown(self.hi)}"


class Port(Frozen, frozen=True, kw_only=True):
    """A port number, or off."""

    def __call__(self, text: str) -> int | None:
        if text.strip().lower() in ("off", "no", "none"):
            return None
        value: int = Integer(lo=0, hi=65535)(text)
        return value

    def describe(self) -> str:
        return "0 to 65535, or `off`"


class Boolean(Frozen, frozen=True, kw_only=True):
    def __call__(self, text: str) -> bool:
        word = text.strip().lower()
        if word in ("1", "yes", "true", "on"):
            return True
        if word in ("0", "no", "false", "off"):
            return False
        raise Invalid(f"{text!r} is not a yes/no value; use yes or no")

    def describe(self) -> str:
        return "`yes` or `no`"


def _either(words: Sequence[str]) -> str:
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


class Choice(Frozen, frozen=True, kw_only=True):
    choices: tuple[str, ...]
    upper: bool = False  # case-insensitive, written in capitals

    def __call__(self, text: str) -> str:
        word = text.strip()
        if self.upper and word.isascii():
            word = word.upper()
        if word not in self.choices:
            raise Invalid(f"{text!r} is not one of {', '.join(self.choices)}")
        return word

    def describe(self) -> str:
        return _either([f"`{c}`" for c in self.choices])


class Address(Frozen, frozen=True, kw_only=True):
    """An IP address; brackets around an IPv6 address are dropped."""

    def __call__(self, text: str) -> str:
        address = text.strip().strip("[]")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise Invalid(
                f"{text.strip()!r} is not an IP address; use :: or 0.0.0.0"
            ) from None
        return address

    def describe(self) -> str:
        return "an IP address"


_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Duration(Frozen, frozen=True, kw_only=True):
    """A time span: ``15m``, ``90s``, ``2h``, ``1d``, ``1h30m`` or plain
    seconds; off: None."""

    lo: float
    hi: float

    def __call__(self, text: str) -> float | None:
        value = text.strip().lower()
        if value in ("", "off", "no", "none"):
            return None
        if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", value):
            seconds = float(value)
        elif re.fullmatch(r"(?:[0-9]+(?:\.[0-9]+)?[smhd])+", value):
            seconds = sum(
                float(n) * _UNITS[unit]
                for n, unit in re.findall(r"([0-9]+(?:\.[0-9]+)?)([smhd])", value)
            )
        else:
            raise Invalid(f"{text.strip()!r} is not a time span; use e.g. 15m or 900")
        if not self.lo <= seconds <= self.hi:
            raise Invalid(
                f"{text.strip()} is out of range; use {_shown(self.lo)} s to "
                f"{_shown(self.hi / 86400)} days"
            )
        return seconds

    def describe(self) -> str:
        return "a time span such as `15m`, `90s`, `1h30m` (plain: seconds), or `off`"


class Names(Frozen, frozen=True, kw_only=True):
    """A list of names, comma- or space-separated (checked where they are used)."""

    values: str

    def __call__(self, text: str) -> tuple[str, ...]:
        return split_list(text)

    def describe(self) -> str:
        return self.values


class HostPort(Frozen, frozen=True, kw_only=True):
    """``ADDRESS:PORT`` for a listener (``[::1]:9140`` for IPv6); off: None."""

    def __call__(self, text: str) -> tuple[str, int] | None:
        value = text.strip()
        if value.lower() in ("", "off", "no", "none"):
            return None
        host, sep, port = value.rpartition(":")
        host = host.strip("[]")
        if host == "localhost":
            host = "127.0.0.1"
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise Invalid(
                f"{value!r} is not ADDRESS:PORT; use e.g. 127.0.0.1:9140, "
                "[::1]:9140 or 0.0.0.0:9140"
            ) from None
        if not sep or not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
            raise Invalid(f"{value!r} has no port from 0 to 65535 after the address")
        return host, int(port)

    def describe(self) -> str:
        return "`ADDRESS:PORT` or `off`"


class Networks(Frozen, frozen=True, kw_only=True):
    """A list of addresses and CIDR ranges."""

    def __call__(self, text: str) -> tuple[str, ...]:
        items = split_list(text)
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise Invalid(
                    f"{item!r} is not an address or CIDR range; "
                    "use e.g. 192.0.2.1,10.0.0.0/8"
                ) from None
        return items

    def describe(self) -> str:
        return "addresses and CIDR ranges, comma-separated"


class Text(Frozen, frozen=True, kw_only=True):
    def __call__(self, text: str) -> str:
        return text.strip()

    def describe(self) -> str:
        return "text"


class TimeFormat(Frozen, frozen=True, kw_only=True):
    """A strftime format, tried once here rather than on the first alert."""

    def __call__(self, text: str) -> str:
        try:
            time.strftime(text, time.localtime(0)).encode("utf-8")
        except (ValueError, UnicodeError) as exc:
            raise Invalid(f"{text!r} is not a strftime format: {exc}") from None
        return text

    def describe(self) -> str:
        return "a strftime format; empty for none"


class Directory(Frozen, frozen=True, kw_only=True):
    """A directory, made absolute; ``sockets``: Unix sockets go in it."""

    sockets: bool = False

    def __call__(self, text: str) -> str:
        path = os.path.abspath(text.strip())
        size = len(os.fsencode(path))
        if self.sockets and size > RUN_DIR_MAX:
            raise Invalid(
                f"{path!r} is {size} bytes long, too long for the Unix sockets "
                f"in it (at most {SUN_PATH_MAX} bytes with their names); use a "
                f"directory of at most {RUN_DIR_MAX} bytes"
            )
        return path

    def describe(self) -> str:
        return "a directory"


class LogFile(Frozen, frozen=True, kw_only=True):
    """A file made absolute, or None (stderr) for empty or ``-``."""

    def __call__(self, text: str) -> str | None:
        if text.strip() in ("", "-"):
            return None
        return os.path.abspath(text.strip())

    def describe(self) -> str:
        return "a file, or `-`"


class File(Frozen, frozen=True, kw_only=True):
    """A file, made absolute, or "" for none; whether it holds what it should
    is checked by its user (the TLS files: ``tls.server_context``)."""

    def __call__(self, text: str) -> str:
        return os.path.abspath(text.strip()) if text.strip() else ""

    def describe(self) -> str:
        return "a file"


class Endpoint(Frozen, frozen=True, kw_only=True):
    """A ZeroMQ endpoint; an ipc:// path must fit in a Unix socket address."""

    def __call__(self, text: str) -> str:
        endpoint = text.strip()
        if not re.match(r"^(tcp|ipc|inproc)://\S+$", endpoint):
            raise Invalid(
                f"{endpoint!r} is not a ZeroMQ endpoint; "
                "use tcp://HOST:PORT or ipc:///PATH"
            )
        if endpoint.startswith("ipc://"):
            size = len(os.fsencode(endpoint[len("ipc://") :]))
            if size > SUN_PATH_MAX:
                raise Invalid(
                    f"{endpoint!r}: the socket path is {size} bytes long; "
                    f"Unix sockets allow at most {SUN_PATH_MAX}"
                )
        return endpoint

    def describe(self) -> str:
        return "`tcp://HOST:PORT` or `ipc:///PATH`"


# ZeroMQ RFC 32: the 85 digits, in order.
_Z85 = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ".-:+=^!/*?&<>()[]{}@%$#"
)


def _is_z85_key(key: str) -> bool:
    """Whether key is Z85 text of 32 bytes: 8 groups of 5 digits base 85."""
    if len(key) != 40 or any(c not in _Z85 for c in key):
        return False
    for i in range(0, 40, 5):
        value = 0
        for c in key[i : i + 5]:
            value = value * 85 + _Z85.index(c)
        if value >= 1 << 32:
            return False
    return True


def _key(key: str) -> str:
    # Never echo a key: the secret one is a credential.
    if len(key) == 42 and key[0] == key[-1] and key[0] in "'\"":
        # `alertik keygen` quotes its values for sh, systemd and compose;
        # `docker run --env-file` keeps the quotes as part of the value.
        raise Invalid("is in quotes; remove them (docker run --env-file keeps them)")
    if len(key) != 40:
        raise Invalid(
            "is not a 40-character Z85 CURVE key; make one with alertik keygen"
        )
    if not _is_z85_key(key):
        raise Invalid("is not a Z85 CURVE key; make one with alertik keygen")
    return key


class CurveKey(Frozen, frozen=True, kw_only=True):
    """A Z85 CURVE key, or empty for none."""

    def __call__(self, text: str) -> str:
        return _key(text.strip()) if text.strip() else ""

    def describe(self) -> str:
        return "a 40-character Z85 key"


class CurveKeys(Frozen, frozen=True, kw_only=True):
    """Z85 CURVE keys, comma-separated."""

    def __call__(self, text: str) -> tuple[str, ...]:
        return tuple(_key(key) for key in split_list(text))

    def describe(self) -> str:
        return "40-character Z85 keys, comma-separated"


class Elsewhere(Frozen, frozen=True, kw_only=True):
    """A variable that code outside this table reads; described here only."""

    values: str

    def __call__(self, text: str) -> str:
        return text

    def describe(self) -> str:
        return self.values
