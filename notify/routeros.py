"""The RouterOS address-list action: add an alert's address to a firewall list.

An alert for an ``routeros-address-list`` destination carries the address to
act on (``Alert.address``: the destination's ``address`` mask, expanded by the
matcher); notify keeps it in the outbox as an order (``services.Order``).
``AddressListTransport`` carries out one order:

1. the address must be one IPv4 or IPv6 address, else the order is skipped;
2. an address inside ``allow`` is never added (skipped, and said loudly);
3. in audit mode nothing is added: the order is skipped, and the report
   destination is told what would have been added;
4. otherwise one ``PUT /rest/ip/firewall/address-list`` (``ipv6/...`` for an
   IPv6 address) over the router's REST API, checked against ``ca_file`` when
   the router has its own certificate. An address already on the list counts
   as done (``services.routeros_answer``), so retries never add it twice.

Every outcome that changed something, or would have, is reported in words by
``report_text`` (the worker sends that to the destination's ``report``).
The password never leaves the Authorization header; log lines and reports
name the router by its host only.
"""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Any
from urllib.parse import urlsplit

import msgspec
import requests

from alertik.common.config import NotifyConfig
from alertik.common.destinations import AddressListDestination
from alertik.notify.scrub import excerpt, scrub, secrets_for
from alertik.notify.services import (
    SERVICES,
    Attempt,
    Order,
    Verdict,
    basic_auth,
    read_order,
)
from alertik.notify.transport import HttpTransport, make_session

# How much of a value that is not an address is quoted in the log.
SHOWN_CHARS = 80


def router_host(dest: AddressListDestination) -> str:
    """The router, as a log line or a report may name it."""
    return urlsplit(dest.url).hostname or "the router"


def _listed(dest: AddressListDestination) -> str:
    return f"address list {dest.list_name!r} on {router_host(dest)}"


def decide(dest: AddressListDestination, order: Order) -> tuple[str, Verdict | None]:
    """The address to add, or the verdict that none is (skipped: why)."""
    raw = order.address.strip()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        shown = repr(raw[:SHOWN_CHARS]) if raw else "an empty text"
        why = (
            f"{shown} is not an IP address (the mask {dest.address} of rule "
            f"{order.rule})"
        )
        return raw, Verdict("skipped", reason=why)
    for network in dest.allowed:
        if address.version == network.version and address in network:
            why = f"{address} is in the allow-list ({network}): never added"
            return str(address), Verdict("skipped", reason=why)
    if dest.audit:
        why = f"audit mode: would add {address} to {_listed(dest)}"
        return str(address), Verdict("skipped", reason=why)
    return str(address), None


class AddressListTransport:
    """Carries out one destination's orders against the router's REST API."""

    def __init__(
        self, dest: AddressListDestination, cfg: NotifyConfig, secrets: list[str]
    ) -> None:
        self._dest = dest
        self._http = HttpTransport(
            dest, SERVICES["routeros-address-list"], cfg, secrets
        )

    def close(self) -> None:
        self._http.close()

    def attempt(self, text: str, key: str) -> Attempt:
        order = read_order(text)
        address, verdict = decide(self._dest, order)
        if verdict is not None:
            return Attempt(None, {}, b"", verdict=verdict)
        # The address as RouterOS writes it (2001:DB8::1 -> 2001:db8::1).
        clean = msgspec.structs.replace(order, address=address)
        return self._http.attempt(msgspec.json.encode(clean).decode("utf-8"), key)


def report_text(
    dest: AddressListDestination, order: Order, result: str, detail: str
) -> str | None:
    """What the report destination is told about one order; None: nothing."""
    rule = f"rule {order.rule}" if order.rule else "no rule"
    address = order.address.strip()[:SHOWN_CHARS]
    with contextlib.suppress(ValueError):
        address = str(ipaddress.ip_address(address))  # as RouterOS lists it
    timeout = "" if dest.timeout == "none" else f" for {dest.timeout}"
    if result == "delivered":
        if detail:  # already on the list: nothing changed
            return None
        where = f"{_listed(dest)}{timeout}"
        return f"alertik added {address} to {where} ({rule}): {order.text}"
    if result == "skipped":
        if dest.audit and detail.startswith("audit mode"):
            return (
                f"AUDIT, nothing changed: alertik would add {address} to "
                f"{_listed(dest)}{timeout} ({rule}): {order.text}"
            )
        return f"alertik did not add {address} ({rule}): {detail}: {order.text}"
    if result == "failed":
        return f"alertik could NOT add {address} to {_listed(dest)} ({rule}): {detail}"
    return None


def describe(dest: Any) -> str:
    """A start-up line about an action destination: what it does, how safely."""
    assert isinstance(dest, AddressListDestination)
    mode = "AUDIT ONLY (adds nothing)" if dest.audit else "adds"
    allow = f", never {', '.join(dest.allow)}" if dest.allow else ""
    report = f", reports to {dest.report}" if dest.report else ""
    return f"{dest.name}: {mode} {dest.address} to {_listed(dest)}{allow}{report}"


def check(dest: AddressListDestination, cfg: NotifyConfig) -> tuple[bool, str]:
    """Whether the router's REST API takes our login, read-only: the list's
    entries are read, nothing is changed. (ok, what to print)."""
    secrets = secrets_for(dest)
    url = f"{dest.rest_url}/ip/firewall/address-list"
    session = make_session(dest)
    try:
        resp = session.get(
            url,
            params={"list": dest.list_name},
            headers={"Authorization": basic_auth(dest.user, dest.password)},
            timeout=(cfg.connect_timeout, cfg.read_timeout),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return False, scrub(f"{type(exc).__name__}: {exc}", secrets)
    finally:
        session.close()
    if resp.status_code != 200:
        return False, f"HTTP {resp.status_code}: {excerpt(resp.content, secrets)}"
    try:
        entries = msgspec.json.decode(resp.content)
    except msgspec.DecodeError:
        entries = None
    if not isinstance(entries, list):
        return False, "HTTP 200, but not RouterOS's answer (no list of entries)"
    return True, (
        f"logged in; {len(entries)} entries on {_listed(dest)}; nothing changed "
        "(give an address to add it for real)"
    )
