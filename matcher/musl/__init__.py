"""musl's POSIX ERE dialect for EVENTn_MATCH_STR, exactly, on RE2 in linear time.

alertik's official image is a static musl binary: every regex event is
``regcomp(pattern, REG_EXTENDED)`` (musl's TRE) in the C locale, searched with
``regexec``. Admins' rules must keep behaving byte for byte the same here, so this
package

* parses the pattern exactly as musl's ``tre_parse`` does, accepting and rejecting
  the same patterns (a rejection raises :class:`RegexError` quoting musl's own
  error text);
* emits an explicit, unambiguous pattern for google-re2 (``import re2``), compiled
  with :data:`OPTIONS` (leftmost-longest, Latin-1, i.e. one byte is one character)
  and searched on bytes, so no input can make a search slower than linear;
* makes RE2 pick the same submatches as TRE where the two differ: fixed-string
  alternatives are emitted longest first (``(ether|ether1)`` on ``ether12``
  captures ``ether1``); a group with other alternatives, like
  ``([a-z]+|[a-z]+_[a-z]+)``, is settled by trying each branch and keeping the
  longest groups, left to right; the last iteration of ``(x)+`` is made as long
  as TRE makes it (``(a{1,3})+`` on ``aaaaa`` captures ``aaa``); a nullable part
  is skipped only along TRE's one empty path (so ``$?`` means ``$``); and after
  each match a group that is not inside its parent group's span, or whose parent
  is unset, is cleared. These extra steps cost RE2 calls only when there is a
  match; a line that does not match costs one RE2 search.

The dialect, in short (details in tests/unit/test_musl_regex.py and the musl
oracle under tests/oracle/):

* ``\\d \\D \\w \\W \\s \\S`` and all twelve ``[[:class:]]`` are ASCII only; ``\\s``
  includes ``\\v``. ``\\t \\n \\r \\f \\a \\e \\xHH \\x{H...}`` are characters; ``\\v``
  is the letter v; ``\\1``..``\\9`` are digits (no back-references in ERE); any
  other escaped character is itself. Inside brackets a backslash is a literal.
* ``.`` and negated brackets match every byte, newline and 0x80-0xFF included.
* ``*? +? ??`` are not lazy: stacked quantifiers nest and stay greedy.
* ``^``/``$`` only match at the very start/end of the message (``$`` not before a
  final newline). An unmatched ``)`` is a literal; empty groups and branches are
  allowed. ``x{0}`` drops x, but musl still reports each group inside it as an
  empty span at the start of the match, even on a branch that did not match.
* Positions in error and lint messages count bytes of the pattern, from 1.
* ``\\b`` holds at every word boundary and, a TRE quirk, always at the start and
  end of the message. ``\\<``, ``\\>`` and ``\\B`` are accepted wherever RE2 can
  express them exactly (``\\<`` right before something that can only start with a
  letter, digit or ``_``, ``\\>`` right after something that can only end with one,
  and ``\\B`` between two characters that are surely there); any other use is
  refused with a RegexError that says how to rewrite it.

``compile(pattern, icase=True)`` is ``regcomp`` with ``REG_ICASE`` as well (rules
in the rules file with ``icase = true``): a letter written in the pattern, alone,
escaped or inside brackets, matches either case, and a class matches a character
whose other case it holds (``[[:upper:]]`` takes ``a``, ``[^a]`` refuses ``A``);
``\\xHH`` stays that one byte, and bytes 0x80-0xFF have no case. Checked against
musl built with REG_ICASE (tests/data/musl_icase_cases.json). On contrived
patterns musl's TRE sometimes misses the leftmost match under REG_ICASE
(``a*(.A|bc|A)(b*)`` on ``xxbBAaA`` starts at 4, not 3); alertik then reports the
leftmost one.

Deliberate differences from alertik (which matches a NUL-terminated copy of the
first 2047 bytes): messages are searched whole, and a NUL byte is an ordinary
character. ``.``, negated brackets, ``\\D``/``\\W``/``\\S``, ``[[:cntrl:]]`` and
``\\x00`` match it, and it is not a word character, so a NUL in the middle of a
datagram no longer hides the rest of it. On lines without NUL this changes nothing.

Patterns that musl accepts but this engine refuses (always with a RegexError at
start-up, never a crash): ``\\<``/``\\>``/``\\B`` with no exact form, nested counted
repetitions beyond RE2's limit of 1000 copies (e.g. ``(x{255}){4}``), patterns whose
compiled program exceeds :data:`MAX_MEM`, and patterns nested deeper than
:data:`MAX_DEPTH` levels. One TRE quirk is not reproduced: on ``(a|ab)(c|bcd)(d*)``
musl splits ``abcd`` as a|bcd|"" where RE2 gives ab|c|d.

The public API is what ``__all__`` below lists. The modules, bottom up (names with
a leading underscore are shared between them, never used outside the package):

* ``bytesets``: byte sets, musl's classes and macros, RE2 spelling of a set;
* ``tree``: the parse tree tre_parse builds;
* ``errors``: RegexError, musl's error texts, lint notes, the pattern reader;
* ``brackets`` and ``parser``: musl's tre_parse, step for step;
* ``analysis``: assertion contexts, TRE's empty paths, branch choices;
* ``emitter``: the tree spelled as RE2 text;
* ``engine``: RE2 options, MuslRegex, compile() and lint().
"""

from __future__ import annotations

from alertik.matcher.musl.engine import (
    MAX_DEPTH,
    MAX_MEM,
    OPTIONS,
    MuslRegex,
    RegexError,
    compile,
    lint,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_MEM",
    "OPTIONS",
    "MuslRegex",
    "RegexError",
    "compile",
    "lint",
]
