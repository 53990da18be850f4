"""The verdict: yes, no or unclear, from the subject or the clauses read.

A one-click subject decides first; otherwise the window of the own text is
read sentence by sentence and weighed: states decide, both kinds at once are
unclear, answer words count only without a state, a question one answers
oneself lends its state to a bare "No.".
"""

from __future__ import annotations

from collections.abc import Iterable

from daemon.core import text
from daemon.mail.answers.clauses import _Clause, _read_sentence
from daemon.mail.answers.lexicon import _N, _P, Answer
from daemon.mail.answers.lookup import _Lexicon, _lexicon
from daemon.mail.answers.oneclick import subject_answer
from daemon.mail.answers.window import _window
from daemon.mail.answers.words import _sentences


def read_answer(
    body: str,
    subject: str = "",
    *,
    prefix: str = "HD",
    yes_words: Iterable[str] = (),
    no_words: Iterable[str] = (),
) -> Answer:
    """yes, no or unclear: the subject of a one-click reply first, then the
    start of the requester's own text (see the module docstring)."""
    by_subject = subject_answer(subject, prefix) if subject else None
    if by_subject is not None:
        return by_subject
    lex = _lexicon(tuple(yes_words), tuple(no_words))
    return _verdict(_window(text.own_text(body)), lex)


def _verdict(window: str, lex: _Lexicon) -> Answer:
    strong: set[int] = set()
    answers: set[int] = set()
    quiet: set[int] = set()
    thanks = False
    unclear = False
    sentences = []
    for sentence in _sentences(window):
        question = sentence[-1] == ["?"]
        read, conditional = _read_sentence([c for c in sentence if c != ["?"]], lex)
        sentences.append((question, read, conditional))
    echo: int | None = None  # "Is the problem still there? No."
    after_contrast = False
    for n, (question, read, conditional) in enumerate(sentences):
        answered = n + 1 < len(sentences) and _answers_a_question(sentences[n + 1][1])
        if question and (answered or sum(c.words for c in read) <= 3):
            states = [s for c in read for s in c.states()]
            echo = states[0] if states else None
            continue
        for clause in read:
            after_contrast = after_contrast or clause.contrast
            states = clause.states()
            if clause.anymore and echo is not None:
                states = [-echo]
            elif clause.anymore:
                unclear = True
            if echo is not None and clause.answers and not states:
                states = [a * echo for a in clause.answers]
                clause.answers = []
            if after_contrast and strong and _N in clause.quiet and not states:
                states = [_N]  # "works, but does not print in colour"
            strong.update(states)
            answers.update(clause.answers)
            for q in clause.quiet:
                if q == _P:
                    thanks = True
                else:
                    quiet.add(q)
            unclear = unclear or clause.unclear or (clause.report and not conditional)
        echo = None
    if _P in strong and _N in strong:
        return "unclear"
    if _N in strong:
        return "no"
    if _P in strong:
        return "unclear" if unclear else "yes"
    if unclear:
        return "unclear"
    if answers:
        if len(answers) > 1:
            return "unclear"
        if _P in answers:
            return "unclear" if _N in quiet else "yes"
        return "no"
    if _N in quiet:
        return "no"
    return "yes" if thanks else "unclear"


def _bare_answer(clauses: list[_Clause]) -> bool:
    """An answer to a question of one's own: "No.", „Już nie.”, with no state."""
    return (
        bool(clauses)
        and all(not c.states() for c in clauses)
        and any(c.answers or c.anymore for c in clauses)
    )


def _answers_a_question(clauses: list[_Clause]) -> bool:
    """ "Does it work? Not really." / "Problem? Gone.": a short answer follows."""
    return _bare_answer(clauses) or sum(c.words for c in clauses) <= 3
