"""What one clause, and one sentence of clauses, says.

Cues found by the lookup, with negation carried to the next cue within a
clause, conditionals and modals taken as no fact, and within a sentence the
concession, the "then" and the "sometimes" that change what its clauses say.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.mail.answers.lexicon import _FILLERS, _N, _P, _SPECIAL, _WH
from daemon.mail.answers.lookup import _Lexicon
from daemon.mail.answers.words import _CONCESSIVE, _THEN


@dataclass(slots=True)
class _Clause:
    """What one clause says; `states()` is its verdict on how things are."""

    preds: list[int] = field(default_factory=list)
    topics: list[int] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    quiet: list[int] = field(default_factory=list)
    partial: bool = False
    unclear: bool = False
    report: bool = False
    past: bool = False
    present: bool = False
    contrast: bool = False
    anymore: bool = False
    words: int = 0

    def states(self) -> list[int]:
        found = self.preds or self.topics
        if self.partial:
            found = [_N]
        if self.past and not self.present:
            found = []  # „był błąd”, "it worked yesterday": not how it is now
        return found


def _read_clause(words: list[str], lex: _Lexicon, conditional: list[bool]) -> _Clause:
    """One clause's cues, with negation carried to the next cue (up to 4 words on)."""
    clause = _Clause(words=len(words))
    neg_left = 0  # words a negation still reaches; 0: none pending
    modal = False
    content = False  # a word before that is more than a filler
    i = 0
    while i < len(words):
        if conditional[0]:
            break  # the rest of a conditional sentence is no fact
        word = words[i]
        entry = lex.longest(words, i)
        if word in _SPECIAL and (entry is None or len(entry.words) == 1):
            i += 1
            last = i >= len(words)
            if word == "tak":
                if not content or last:
                    clause.answers.append(_P)  # „Tak, działa”, „chyba tak”
            elif word == "nie":
                neg_left = 4
            elif _negates_noun(words, i, lex):
                neg_left = 4  # "no errors"
            elif last or words[i] not in ("nie", "tak"):
                clause.answers.append(_N)  # "No, ..." / "No it works now"
            continue
        if entry is None:
            i += 1
            if neg_left:
                neg_left -= 1
                if not neg_left:
                    clause.quiet.append(_N)  # „nie drukuje”, "can not log in"
            content = content or word not in _FILLERS
            continue
        cue = entry.cue
        i += len(entry.words)
        role = cue.role
        if role == "neg":
            neg_left = 4
            continue
        if role == "anymore":
            if i >= len(words) and not content:
                clause.anymore = True
            elif i >= len(words) and clause.topics and not clause.preds:
                clause.topics[-1] = _P  # „Błędu już nie ma”
            else:
                neg_left = 4
            continue
        if role == "cond":
            conditional[0] = True
            continue
        if role == "modal":
            modal = True
            continue
        if role in ("past", "present", "contrast"):
            setattr(clause, role, True)
            continue
        if role == "neutral":
            continue
        if role in ("glad", "sad"):
            clause.quiet.append(cue.polarity)  # politeness and faces: no negation reaches them
            content = True
            continue
        content = True
        negated = neg_left > 0
        neg_left = 0
        flip = -1 if negated else 1
        if role == "pred":
            if not modal:
                clause.preds.append(cue.polarity * flip)
        elif role == "topic":
            clause.topics.append(cue.polarity * flip)
        elif role == "partial":
            clause.partial = True
        elif role == "unclear":
            clause.unclear = True
        elif role == "report":
            clause.report = True
        elif role == "check":
            clause.unclear = clause.unclear or negated  # "haven't tested yet"
        elif role in ("yes", "no"):
            clause.answers.append(cue.polarity * flip)  # „nie potwierdzam”
        elif role == "persist":
            clause.present = True
            if negated:
                neg_left = 4  # "still not working": the negation goes on
            else:
                clause.quiet.append(_N)
    if neg_left:
        if clause.topics and not clause.preds:
            clause.topics[-1] = -clause.topics[-1]  # „Problemu nie ma”, "errors: none"
        elif content:
            clause.preds.append(_N)  # „skaner nie”: the scanner does not (work)
        else:
            clause.answers.append(_N)  # „Nie.”, „chyba nie”
    return clause


def _negates_noun(words: list[str], i: int, lex: _Lexicon) -> bool:
    """English "no" before a noun negates it ("no errors"), else it answers."""
    j = i
    while j < len(words) and words[j] in ("more", "further", "other", "real", "new", "major"):
        j += 1
    if j >= len(words):
        return False
    entry = lex.longest(words, j)
    return entry is not None and entry.cue.role in ("topic", "pred")


def _read_sentence(clauses: list[list[str]], lex: _Lexicon) -> tuple[list[_Clause], bool]:
    """The clauses of one sentence, and whether a condition made part of it no fact.

    „Nie wiem, co Pan zrobił, ale działa”: a not-knowing followed by a
    question word is an aside. "sometimes" in one clause holds for the sentence.
    """
    conditional = [False]
    read = [_read_clause(words, lex, conditional) for words in clauses]
    for clause, following in zip(read, clauses[1:], strict=False):
        if clause.unclear and following and following[0] in _WH:
            clause.unclear = False
    for k, words in enumerate(clauses):
        if words[0] in _CONCESSIVE:
            read[k].preds, read[k].topics = [], []  # „działa, chociaż rano się zawiesiło”
        if words[0] in _THEN and read[k].states():
            for earlier in read[:k]:
                earlier.preds, earlier.topics = [], []
    if any(c.partial for c in read):
        for clause in read:
            clause.preds = [_N if p > 0 else p for p in clause.preds]
    return read, conditional[0]
