"""E-mail: one message per alert (or per digest) through an SMTP server.

Only the standard library: ``email`` builds the message, ``smtplib`` sends it
with STARTTLS (port 587 by default), implicit TLS (465) or neither (25, only
without a password). Certificates are verified unless the destination says
``verify_tls = false``; a server that does not offer STARTTLS when it was
asked for is refused, never used in clear.

One connection per message: alerts are rare, and a connection kept open
between them would time out on the server anyway. Each message is bounded in
time like an HTTP request (connect + read timeout in all): a server that
answers byte by byte is cut off at that deadline.

The server's code becomes the attempt's status (``services.smtp_answer``: 2xx
taken, 4xx retried, 5xx refused); a connection that fails has none and is
retried. The Message-ID comes from the message's key, so a copy sent again
after a restart is recognisable as the same message.
"""

from __future__ import annotations

import contextlib
import email.policy
import email.utils
import re
import smtplib
import socket
import ssl
import threading
import time
from email.message import EmailMessage

from alertik.common.config import NotifyConfig
from alertik.common.destinations import EmailDestination
from alertik.notify.services import Attempt, Verdict

SUBJECT_PREFIX = "alertik: "
# A subject is the text's first line, cut here (RFC 5322 asks for at most 78
# characters a line; encoded words fold longer ones).
SUBJECT_CHARS = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def subject(text: str) -> str:
    """The subject of a message: its first line (a digest's count), cut."""
    first = _CONTROL.sub(" ", text.strip().split("\n", 1)[0]).strip()
    if len(first) > SUBJECT_CHARS:
        first = first[: SUBJECT_CHARS - 3].rstrip() + "..."
    return SUBJECT_PREFIX + (first.rstrip(":") or "alert")


def message(dest: EmailDestination, text: str, key: str) -> EmailMessage:
    """The message that carries text: plain UTF-8 text, one part."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = dest.sender
    msg["To"] = ", ".join(dest.to)
    msg["Subject"] = subject(text)
    msg["Date"] = email.utils.formatdate(localtime=True)
    domain = email.utils.parseaddr(dest.sender)[1].rpartition("@")[2] or "alertik"
    msg["Message-ID"] = f"<{key}.alertik@{domain}>"
    # RFC 3834: sent by a program; auto-responders do not answer it.
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, charset="utf-8")
    return msg


def tls_context(dest: EmailDestination) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not dest.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Refused(Exception):
    """The server cannot be used safely (no STARTTLS)."""


class SmtpTransport:
    """Sends one destination's messages, each over its own SMTP connection."""

    def __init__(self, dest: EmailDestination, cfg: NotifyConfig) -> None:
        self._dest = dest
        self._timeout = max(cfg.connect_timeout, cfg.read_timeout)
        self.deadline = cfg.connect_timeout + cfg.read_timeout
        self._context = tls_context(dest)

    def close(self) -> None:
        """Nothing stays open between messages."""

    def attempt(self, text: str, key: str) -> Attempt:
        started = time.monotonic()
        msg = message(self._dest, text, key)
        smtp: smtplib.SMTP | None = None
        cut = threading.Event()

        def cutoff() -> None:
            # The deadline of the whole exchange: wake a blocked read.
            cut.set()
            sock = getattr(smtp, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(self.deadline, cutoff)
        timer.daemon = True
        timer.start()
        try:
            smtp = self._connect()
            refused = smtp.send_message(msg)
            # The message was taken; a rude goodbye changes nothing.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
        except _Refused as exc:
            verdict = Verdict("failed", reason=str(exc))
            return Attempt(
                None, {}, b"", str(exc), self._since(started), verdict=verdict
            )
        except smtplib.SMTPRecipientsRefused as exc:
            code, answer = next(iter(exc.recipients.values()))
            return self._answer(code, answer, started)
        except smtplib.SMTPResponseException as exc:
            return self._answer(exc.smtp_code, exc.smtp_error, started)
        except (smtplib.SMTPException, OSError) as exc:
            error = (
                f"Timeout: no complete answer within {self.deadline:g} s"
                if cut.is_set()
                else f"{type(exc).__name__}: {exc}"
            )
            return Attempt(None, {}, b"", error, self._since(started))
        finally:
            timer.cancel()
            if smtp is not None:
                smtp.close()
        note = ""
        if refused:
            note = "refused by the server for " + ", ".join(sorted(refused))
        return Attempt(250, {}, b"", note, self._since(started))

    def _connect(self) -> smtplib.SMTP:
        dest = self._dest
        smtp: smtplib.SMTP
        if dest.security == "tls":
            smtp = smtplib.SMTP_SSL(
                dest.host,
                dest.smtp_port,
                timeout=self._timeout,
                context=self._context,
            )
        else:
            smtp = smtplib.SMTP(dest.host, dest.smtp_port, timeout=self._timeout)
        try:
            smtp.ehlo()
            if dest.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise _Refused(
                        "the server does not offer STARTTLS; not sending in clear "
                        '(use security = "tls" for port 465)'
                    )
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if dest.user:
                smtp.login(dest.user, dest.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _answer(self, code: int, answer: bytes | str, started: float) -> Attempt:
        body = answer if isinstance(answer, bytes) else answer.encode("utf-8")
        return Attempt(code, {}, body, "", self._since(started))

    @staticmethod
    def _since(started: float) -> float:
        return time.monotonic() - started
