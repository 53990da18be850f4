"""How large a pattern would compile, judged before it is compiled.

`regex.compile` cannot be stopped, and nested counted repeats multiply into
a compiled size that exhausts memory, not time; a timeout cannot help, so
such a pattern is refused by a scan of its text first. Its parser and
compiler also recurse once per level of nesting (five to seven Python frames
each), so a short pattern nested a few hundred deep raises RecursionError in
the middle of them; the nesting is measured by a scan first too.
"""

from __future__ import annotations

import re

#: Longest pattern accepted, in characters.
MAX_PATTERN = 4096
#: Largest compiled size accepted, estimated as the atoms a pattern expands
#: to: counted repeats are copied when compiled, so nested ones multiply
#: (`(((a{1000}){1000}){1000}){1000}` would be 10^12 copies: memory, not time).
MAX_EXPANSION = 100_000
#: Deepest nesting of groups, lookarounds and character sets accepted. At 50
#: the compiler uses at most about 350 frames of the interpreter's 1,000 (a
#: nested V1 set, the costliest level, takes seven; it failed at 141 levels),
#: and no sane pattern nests a tenth as deep.
MAX_NESTING = 50


def regex_refusal(source: str) -> str | None:
    """Why a pattern must not be compiled (its compiled size could exhaust
    memory), or None. Checked before `regex.compile`, which cannot be stopped."""
    if len(source) > MAX_PATTERN:
        return f"pattern is {len(source)} characters long (limit {MAX_PATTERN})"
    # The scans below are Python loops over every character (0.3 ms a
    # pattern, 10 ms of every start with the starter rules), so each runs
    # only when a bound counted in C could be passed: a level of nesting
    # opens with `(` or `[` (`openings`), and without a `{` nothing is
    # multiplied: a pattern expands to at most its length, far below the limit.
    if openings(source) > MAX_NESTING:
        depth = nesting(source)
        if depth > MAX_NESTING:
            return f"groups, lookarounds and character sets nest {depth} deep (limit {MAX_NESTING})"
    size = expansion(source) if "{" in source else 0
    if size > MAX_EXPANSION:
        return (
            f"counted repeats expand it to about {size:,} atoms when compiled "
            f"(limit {MAX_EXPANSION:,}); use + or * instead of large nested {{n}}"
        )
    return None


def openings(source: str) -> int:
    """A bound `nesting` never exceeds: each level it counts is opened by a
    `(` (a group or lookaround) or a `[` (a set, nested or not)."""
    return source.count("(") + source.count("[")


_COUNT = re.compile(r"\{(\d*)(,(\d*))?\}")
_VERBOSE = re.compile(r"\(\?[a-zA-Z^-]*x")


def expansion(source: str) -> int:
    """How many atoms `source` compiles to, counted repeats multiplied out.

    A one-pass scan that errs upwards: blanks never separate a quantifier
    from its atom, a character set ends at its first `]`, and a quantifier
    on a quantifier multiplies again; an estimate too high only refuses a
    strange pattern, one too low would let memory be exhausted. Without a
    `{` it is at most `len(source)`: each character adds one atom at most."""
    verbose = _VERBOSE.search(source) is not None
    stack: list[list[int]] = [[0, 0]]  # per open group: [atoms so far, atoms of the last item]
    i, end = 0, len(source)
    while i < end:
        ch, frame = source[i], stack[-1]
        atom = 1
        if ch == "\\":
            i = _after_escape(source, i)
        elif ch == "[":
            i = _after_set_start(source, i)
            while i < end and source[i] != "]":
                i += 2 if source[i] == "\\" else 1
            i += 1
        elif ch == "(" and source.startswith("(?#", i):
            close = source.find(")", i)
            i = end if close < 0 else close + 1
            continue
        elif ch == "(":
            stack.append([0, 0])
            i += 1
            continue
        elif ch == ")":
            i += 1
            if len(stack) == 1:
                continue
            atom = max(stack.pop()[0], 1)
            frame = stack[-1]
        elif ch == "{" and (count := _COUNT.match(source, i)) and (count[1] or count[3]):
            low, high = int(count[1] or 0), count[3]
            times = int(high) if high else low + 1 if count[2] else low
            frame[0] += frame[1] * (max(times, 1) - 1)
            frame[1] *= max(times, 1)
            i = count.end()
            continue
        elif ch in "*+?|" or ch.isspace():
            i += 1
            if ch == "|":
                frame[1] = 0
            continue
        elif ch == "#" and verbose:
            newline = source.find("\n", i)
            i = end if newline < 0 else newline + 1
            continue
        else:
            i += 1
        frame[0] += atom
        frame[1] = atom
    while len(stack) > 1:
        inner = stack.pop()[0]
        stack[-1][0] += inner
    return stack[0][0]


#: A POSIX class inside a set, as the `regex` parser reads one (`[:alpha:]`,
#: `[:^digit:]`, `[:script=Latin:]`); any other `[` in a set is a character
#: (version 0) or a nested set (version 1).
_POSIX_CLASS = re.compile(
    r"\[:\^?[A-Za-z0-9 &_.-]*"  # `[:`, negation, name
    r"(?:[:=](?=[A-Za-z0-9 &_./-]*[A-Za-z0-9&_./-])[A-Za-z0-9 &_./-]*)?"  # `=value`
    r":\]"
)


def nesting(source: str) -> int:
    """How deep groups, lookarounds and character sets nest in `source`.

    The deepest of four readings: with and without verbose mode (`#`
    comments) and with and without version 1 (nested sets). Flags may be set
    anywhere in a pattern, and a reading that mistakes a comment or a set
    for syntax could count too few levels; one of the four is the parser's
    own, so the deepest is never too shallow."""
    return max(
        _depth(source, verbose=verbose, nested_sets=nested_sets)
        for verbose in (False, True)
        for nested_sets in (False, True)
    )


def _depth(source: str, *, verbose: bool, nested_sets: bool) -> int:
    """Deepest nesting in one reading of `source`: one linear pass."""
    groups = sets = deepest = 0
    i, end = 0, len(source)
    while i < end:
        ch = source[i]
        if ch == "\\":
            i = _after_escape(source, i)
            continue
        if sets:
            if ch == "]":
                sets -= 1
            elif ch == "[" and (posix := _POSIX_CLASS.match(source, i)):
                i = posix.end()
                continue
            elif ch == "[" and nested_sets:
                sets += 1
                i = _after_set_start(source, i)
                deepest = max(deepest, groups + sets)
                continue
            i += 1
            continue
        if ch == "[":
            sets = 1
            i = _after_set_start(source, i)
        elif ch == "(" and source.startswith("(?#", i):
            close = source.find(")", i)
            i = end if close < 0 else close + 1
            continue
        elif ch == "(":
            groups += 1
            i += 1
        elif ch == ")":
            groups = max(groups - 1, 0)
            i += 1
        elif ch == "#" and verbose:
            newline = source.find("\n", i)
            i = end if newline < 0 else newline + 1
        else:
            i += 1
        deepest = max(deepest, groups + sets)
    return deepest


def _after_escape(source: str, i: int) -> int:
    """Index after the escape at `i`; `\\p{..}`, `\\N{..}` and `\\x{..}` whole."""
    i += 2
    if source[i - 1 : i] in ("p", "P", "N", "x") and source[i : i + 1] == "{":
        close = source.find("}", i)
        return len(source) if close < 0 else close + 1
    return i


def _after_set_start(source: str, i: int) -> int:
    """Index after the `[` at `i`, its `^` and a leading `]`, which is a character."""
    i += 1
    i += source[i : i + 1] == "^"
    i += source[i : i + 1] == "]"
    return i
