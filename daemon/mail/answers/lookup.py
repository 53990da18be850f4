"""Finding the lexicon's cues in a run of words.

The longest phrase starting at a word wins; `*` ends a stem; a one-word cue
typed with one slip still counts. The built-in lexicon is compiled once per
set of configured `yes_words` / `no_words`, which add to it and win over it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from daemon.mail.answers.lexicon import _LEXICON, _N, _P, _QUIET_YES, _SPECIAL, Cue
from daemon.mail.answers.words import _expand, _fold

_STEM = "*"


@dataclass(frozen=True, slots=True)
class _Entry:
    words: tuple[str, ...]
    cue: Cue


@dataclass(slots=True)
class _Lexicon:
    exact: dict[str, list[_Entry]] = field(default_factory=dict)
    stems: list[_Entry] = field(default_factory=list)
    _typos: dict[str, _Entry | None] = field(default_factory=dict)

    def add(self, phrase: str, cue: Cue) -> None:
        words = tuple(w for part in _fold(phrase).split() for w in _expand(part))
        if not words:
            return
        entry = _Entry(words, cue)
        if words[0].endswith(_STEM):
            self.stems.append(entry)
        else:
            self.exact.setdefault(words[0], []).append(entry)

    def longest(self, tokens: Sequence[str], i: int) -> _Entry | None:
        best: _Entry | None = None
        candidates = [*self.exact.get(tokens[i], ()), *self.stems]
        for entry in candidates:
            n = len(entry.words)
            if i + n > len(tokens) or (best is not None and n <= len(best.words)):
                continue
            span = tokens[i : i + n]
            if all(_word_matches(p, t) for p, t in zip(entry.words, span, strict=True)):
                best = entry
        if best is None and tokens[i] not in self.exact:
            return self.typo(tokens[i])
        return best

    def typo(self, token: str) -> _Entry | None:
        """A one-word cue typed with one slip („dzaiła”, "wroking"): words of
        5 letters or more, one slip away from exactly one cue word that
        starts with the same letter."""
        if len(token) < _TYPO_MIN or not token.isalpha():
            return None
        if token not in self._typos:
            found = {
                e.words[0]: e
                for bucket in self.exact.values()
                for e in bucket
                if len(e.words) == 1
                and len(e.words[0]) >= _TYPO_MIN
                and e.words[0][0] == token[0]
                and e.cue.role in _TYPO_ROLES
                and _one_slip(token, e.words[0])
            }
            self._typos[token] = next(iter(found.values())) if len(found) == 1 else None
        return self._typos[token]


_TYPO_MIN = 5
_TYPO_SUBSTITUTION_MIN = 7
_TYPO_ROLES = frozenset({"pred", "topic", "partial", "unclear", "glad", "sad", "persist", "yes"})


def _one_slip(a: str, b: str) -> bool:
    """One letter added, dropped, changed (in words of 7 letters or more) or
    two neighbours swapped, the last letter kept: an ending that differs is
    another form of a word („działo”, "print"), not a slip."""
    if a == b or abs(len(a) - len(b)) > 1 or a[-1] != b[-1]:
        return False
    if len(a) == len(b):
        diff = [k for k in range(len(a)) if a[k] != b[k]]
        if len(diff) == 1:
            return len(a) >= _TYPO_SUBSTITUTION_MIN  # "files" is no slip of "fixes"
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    k = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[k:] == long_[k + 1 :]


def _word_matches(pattern: str, token: str) -> bool:
    if pattern.endswith(_STEM):
        return token.startswith(pattern[:-1])
    return pattern == token


@lru_cache(maxsize=64)
def _lexicon(yes_words: tuple[str, ...], no_words: tuple[str, ...]) -> _Lexicon:
    """The built-in lexicon; configured words add to it and win over it."""
    lex = _Lexicon()
    for (role, polarity), entries in _LEXICON.items():
        for phrase in re.split(r"[|\n]", entries):
            if phrase.strip():
                lex.add(phrase.strip(), Cue(role, polarity))
    for phrase in _QUIET_YES:
        lex.add(phrase, Cue("glad", _P))
    for words, polarity in ((yes_words, _P), (no_words, _N)):
        for phrase in words:
            key = tuple(w for part in _fold(phrase).split() for w in _expand(part))
            if not key or key in ((w,) for w in _SPECIAL):
                continue  # „tak”, „nie”, "no" are read by their place in a clause
            bucket = lex.exact.get(key[0], [])
            same = [e for e in bucket if e.words == key]
            if same and all(e.cue.polarity == polarity for e in same):
                continue  # the built-in reading already says so ("yes", "not fixed")
            # A configured phrase replaces a built-in one of the same words.
            lex.exact[key[0]] = [e for e in bucket if e.words != key]
            lex.add(phrase, Cue("pred", polarity))
    return lex
