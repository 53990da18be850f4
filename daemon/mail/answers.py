"""The requester's answer to "is it fixed?", read the way a person reads it.

The first word does not decide: „Tak naprawdę nadal nie działa” rejects,
„Nie ma już problemu” confirms. The reader looks at the start of the
requester's own text (quotes and signatures cut by `text.own_text`) in Polish
and English, matches a lexicon of cues longest phrase first, applies negation
within a clause („nie działa”, "not working", "no more errors", Polish negative
concord „nic nie działa” counts once), and weighs what it found:

- states decide: „działa”, "fixed", „problem zniknął” against „nadal się wiesza”,
  "still the same", „problem występuje”; both kinds at once is unclear;
- "I'll check tomorrow", „nie wiem” make a confirmation unclear (a rejection
  stays a rejection: reopening is the cheap mistake);
- answer words („tak”, "yes", „nie”, "no") decide only without a state;
- a thank-you alone is a quiet yes, a „niestety” alone a quiet no.

A one-click reply's subject („[HD-12] Potwierdzam rozwiązanie”) decides before
the body. Configured `yes_words` / `no_words` extend the lexicon. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from daemon.core import text
from daemon.mail import threads as mailthread

Answer = Literal["yes", "no", "unclear"]

#: How much of the own text is read: an answer comes first, a story after it
#: must not flip it.
MAX_LINES = 3
MAX_CHARS = 300

# --- one-click answers ------------------------------------------------------------------

#: The prefilled subjects of the two buttons, by language: (confirm, reject).
ONE_CLICK: dict[str, tuple[str, str]] = {
    "pl": ("Potwierdzam rozwiązanie", "Problem nadal występuje"),
    "en": ("I confirm the fix", "The problem persists"),
}
#: The words the verification mail asks for, by language: (yes, no).
ASK_WORDS: dict[str, tuple[str, str]] = {"pl": ("tak", "nie"), "en": ("yes", "no")}


def one_click_subjects(language: str, tag: str) -> tuple[str, str]:
    """The subjects of the confirm and reject buttons: "[HD-12] I confirm the fix"."""
    yes, no = ONE_CLICK.get(language, ONE_CLICK["en"])
    return f"{tag} {yes}", f"{tag} {no}"


def mailto(address: str, subject: str) -> str:
    """A `mailto:` URL (RFC 6068) with a percent-encoded UTF-8 subject."""
    return f"mailto:{address}?subject={urllib.parse.quote(subject, safe='')}"


def _fold(value: str) -> str:
    """Casefolded, without diacritics (people type „dziala”), apostrophes unified."""
    value = value.casefold().replace("ł", "l")
    for quote in "’‘`´ʼ":
        value = value.replace(quote, "'")
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=1)
def _one_click_table() -> dict[str, Answer]:
    table: dict[str, Answer] = {}
    for yes, no in ONE_CLICK.values():
        table[" ".join(_words(yes))] = "yes"
        table[" ".join(_words(no))] = "no"
    return table


def _words(value: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", _fold(value))


def subject_answer(subject: str, prefix: str) -> Answer | None:
    """The answer of a one-click reply, from its subject alone; None otherwise.

    The whole subject, without Re:/Odp: and the tag, must be one of the button
    subjects: a ticket about „Problem nadal występuje z drukarką” is no answer.
    """
    rest = mailthread.clean_subject(subject, prefix)
    return _one_click_table().get(" ".join(_words(rest)))


# --- the lexicon --------------------------------------------------------------------------

Role = Literal[
    "pred",  # a state: works / is broken (decides)
    "topic",  # a problem noun: negative unless a predicate in its clause says more
    "partial",  # "sometimes", „częściowo”: the clause is a rejection
    "unclear",  # "not sure", „sprawdzę”: no confirmation yet
    "report",  # "I'll let you know": unclear unless it is conditional
    "check",  # "tested": nothing; negated ("haven't tested") unclear
    "yes",  # an answer word: tak / yes / potwierdzam
    "no",  # an answer word: nope / 👎
    "glad",  # thanks, a smile, "better": a quiet yes
    "sad",  # „niestety”, ":(": a quiet no
    "persist",  # "still", „nadal” alone: a quiet no
    "neg",  # a negator
    "modal",  # "should", „powinno”: what follows is not a fact
    "cond",  # "if", „jeśli”: the rest of the sentence is not a fact
    "past",  # "before", „wcześniej”: a past problem is no answer
    "present",  # "again", „teraz”: a past marker does not hide it
    "contrast",  # "but", „ale”: a new clause, and what follows weighs more
    "anymore",  # "not anymore", „już nie” standing alone
    "neutral",  # idioms that look like answers but are not („tak naprawdę”)
]


@dataclass(frozen=True, slots=True)
class Cue:
    role: Role
    polarity: int = 0  # +1 yes, -1 no


_P, _N = 1, -1

# Entries separated by "|" or a line end; an entry is a phrase of words, "*" ends a stem.
_LEXICON: dict[tuple[Role, int], str] = {
    ("pred", _P): """
        rozwiązuje|rozwiązują|naprawia|pomaga|pomagają|solves|fixes|helps|poprawiło|poprawił
        |poprawiła|poprawiły|improved|
        usunięty|usunięta|usunięte|usunięto|removed|eliminated|close|closed|happy to close
        |back online|back up|online again|up again|na to wygląda|looks like it|seems so
        |nie muszę już|już nie muszę|no longer have to|no longer need to|works|work|worked
        |working|workin|works fine|functioning|functional|operational|fixed|solved|resolved
        |sorted|sorted out|fine|good|great|perfect|perfectly|excellent|awesome|brilliant
        |fantastic|wonderful|correct|correctly|properly|normal|normally
        |okk|all set|so far so good|prints|printing|starts|opens|connects
        |loads|syncs|log in|login|sign in|logs in|drukuje|drukują|uruchamia się|startuje
        |otwiera się|otwierają się|łączy|łączy się|ładuje się|synchronizuje|zalogować
        |zalogować się|loguje|loguje się|good to go|up and running
        |back to normal|running|gone|disappeared|went away|cleared|helped|did the trick
        |that did it|nailed it|seems to work|seems to be working|appears to work|started working
        |started to work|can be closed|please close|close the ticket|close it|zamykać|zamknąć
        |no longer relevant|not needed|cannot reproduce|can not reproduce|could not reproduce
        |unable to reproduce|działa|działają|działać|działało już|chodzi|śmiga|śmigają
        |funkcjonuje|funkcjonują|naprawione|naprawiony|naprawiona|naprawiono|naprawił|naprawiła
        |naprawiło|naprawili|naprawiliście|naprawić|rozwiązane|rozwiązany|rozwiązana|rozwiązano
        |rozwiązało|rozwiązał|rozwiązała|rozwiązać|rozwiązanie|pomogło|pomogła|pomógł|pomogli
        |udało się|udało|zniknął|zniknęła|zniknęło|zniknęły|ustąpił|ustąpiła|ustąpiło|minął
        |minęło|przeszło|przeszedł|dobrze|dobra|w porządku|wporządku|spoko|git|super|świetnie
        |idealnie|doskonale|elegancko|ekstra|extra|bez zarzutu|bez zarzutów|prawidłowo|poprawnie
        |normalnie|sprawnie|wszystko gra|gra i buczy|jest ok|już ok|wszystko ok|można zamknąć
        |mozna zamykac|proszę zamknąć|do zamknięcia|zamykam|nieaktualne|nieaktualny|nieaktualna
        |nieaktualnie|zaczęło działać|zaczął działać|zaczęła działać|wygląda dobrze
        |wygląda na to że działa|jest dobrze|jest w porządku|nie mogę odtworzyć
        |nie udało mi się odtworzyć|nie udało się odtworzyć|great job|good job|brawo|fix|solve
        |resolve
    """,
    ("pred", _N): """
        offline|unavailable|unreachable|not responding|niedostępny|niedostępna|niedostępne|
        please fix|need a fix|needs fixing|proszę naprawić|
        broken|broke|wrong|fails|failing|failed|fail|failure|crash*|hangs|hanging|hung|freez*
        |frozen|stuck|down|dead|worse|same|the same|same as before|still there|still here
        |still happening|persists|persist|persisting|recurring|came back|comes back
        |back again|happens|happening|happened|occurs|occurring|occurred|appears|appearing
        |appeared|shows up|showing up|showed up|reappeared|keeps|keeps happening|nothing happens
        |nothing changed|no change|no changes|no difference|no luck|didn't help|not fixed
        |no improvement|nic się nie zmieniło|nic się nie dzieje|nic nie pomogło|bez zmian
        |brak zmian|bez efektu|bez rezultatu|bez skutku|to samo|ten sam|ta sama|te same|taki sam
        |taka sama|takie same|tak samo|identycznie|zepsute|zepsuty|zepsuta|zepsuło|zepsuł
        |zepsuła|niedziała|niedziałą|zawies*|wiesza|wieszają|wiesza się|zacina*|zacią*|zacię*
        |sypie się|wywala|wywaliło|crashuje|padł|padło|padła|leży|rozłącza|rozłączają|zrywa
        |zrywa się|występuje|występują|wystąpił|wystąpiła|wystąpiło|pojawia|pojawiają|pojawił
        |pojawiła|pojawiło|pojawiły|wraca|wrócił|wróciła|wróciło|powraca|powrócił|powtarza się
        |utrzymuje się|jest nadal|gorzej|źle|zle|błędnie|nieprawidłowo|niepoprawnie
        |jeszcze gorzej
    """,
    ("topic", _N): """
        problem*|issue|issues|error|errors|bug|bugs|trouble|troubles|fault|faults|glitch*
        |complaints|concerns|questions|worries|błąd|błędy|błędu|błędów|błędem|błędami|kłopot*
        |usterk*|awari*|zastrzeżeń|uwag|pytań|zastrzeżenia|komunikat|komunikatu
    """,
    ("partial", _N): """
        partially|partly|only partly|partial|sometimes|occasionally|intermittent*|sporadic*
        |randomly|from time to time|every now and then|not quite|not completely|not entirely
        |not fully|not really|not always|not 100|mostly works|kind of|sort of|częściowo|czasami
        |czasem|sporadycznie|od czasu do czasu|co jakiś czas|co chwilę|nie do końca|nie całkiem
        |nie zawsze|nie w pełni|tylko częściowo|raz nie|tak sobie|but only|ale tylko
    """,
    ("unclear", 0): """
        not really sure|not quite sure|not entirely sure|nie jestem do końca pewien
        |nie jestem do końca pewna|nie jestem do końca pewny|
        kiedy będzie|kiedy zostanie|kiedy to będzie|when will|kiedy ktoś|when can
        |obserwuj*|obserwow*|poobserwuj*|keep an eye|will monitor|monitoring|
        not sure|unsure|no idea|don't know|do not know|dunno|can't tell|can not tell|can't say
        |can not say|hard to say|difficult to say|too early to say|too early to tell|will check
        |will test|will try|will verify|will see|we'll see|will confirm|going to check
        |going to test|let me check|let me test|check tomorrow|check later|nie wiem
        |nie mam pojęcia|nie mam pewności|no clue|nie jestem pewien|nie jestem pewna
        |nie jestem pewny|nie wiemy|trudno powiedzieć|ciężko powiedzieć|trudno stwierdzić
        |ciężko stwierdzić|za wcześnie|sprawdzę|sprawdze|przetestuję|przetestuje|sprawdzimy
        |przetestujemy|zobaczę|zobaczymy|potwierdzę|potwierdzimy|sprawdzę jutro|jutro sprawdzę
        |dopiero jutro|muszę sprawdzić|musze sprawdzic|muszę to sprawdzić|spróbuję|sprobuje
    """,
    ("report", 0): """
        let you know|get back to you|keep you posted|keep you updated|will report|will write
        |dam znać|dam znac|dam znak|odezwę się|odezwe sie|napiszę|napisze|odpiszę|odpisze
        |damy znać|odezwiemy się
    """,
    ("check", 0): """
        test|check|try|verify|sprawdzić|przetestować|przetestowac|testować|sprawdzać|
        checked|tested|tried|verified|had a chance|had time|had the chance|had the time|looked
        |sprawdzałem|sprawdzałam|sprawdziłem|sprawdziłam|testowałem|testowałam|przetestowałem
        |przetestowałam|miałem okazji|miałam okazji|miałem czasu|miałam czasu|zdążyłem|zdążyłam
        |sprawdzaliśmy|sprawdziliśmy|próbowałem|próbowałam
    """,
    ("yes", _P): """
        ok|okay|okey|okej|oki|
        potwierdzam|potwierdzone|potwierdzony|confirm|confirmed|i confirm|confirming
        |jak najbardziej|zdecydowanie|
        yes|yep|yeah|yup|yea|ya|sure|certainly|indeed|absolutely|definitely|of course|i think so
        |i believe so|affirmative|tak|taak|takk|tak tak|no tak|owszem|zgadza się|dokładnie
        |oczywiście|jasne|pewnie|myślę że tak|chyba tak|raczej tak|wydaje mi się że tak|👍|👌|✅|✔
        |✔️|☑
    """,
    ("no", _N): """
        nope|nah|negative|no no|i don't think so|i do not think so|no nie|chyba nie|raczej nie
        |myślę że nie|not yet|👎|❌|✖|✗
    """,
    ("glad", _P): """
        better|much better|a bit better|lepiej|dużo lepiej|jest lepiej|trochę lepiej|
        thanks|thank you|thank u|thx|thnx|tnx|ty|cheers|appreciated|appreciate it|many thanks
        |dzięki|dziękuję|dziękujemy|dziękuje|dzięks|podziękowania|wielkie dzięki
        |serdecznie dziękuję|dziekuwa|:)|:-)|:d|:-d|;)|;-)|=)|🙂|😊|😀|😃|😄|😁|☺|☺️|🎉|🙏|❤|❤️
    """,
    ("sad", _N): """
        unfortunately|sadly|sorry|niestety|szkoda|:(|:-(|:/|:-/|:'(|☹|☹️|🙁|😞|😢|😟|😕|😩|😠|😡
    """,
    ("persist", _N): """
        still|nadal|wciąż|ciągle|dalej|nadal jest
    """,
    ("neg", 0): """
        no sign of|no trace of|no signs of|ani śladu|ani sladu|
        not|never|no more|none|nothing|neither|nor|without|unable|cannot|nie|nigdy|nic|żaden
        |żadna|żadne|żadnego|żadnej|żadnych|żadnym|brak|braku|bez|ani|przestał|przestała
        |przestało|przestały|przestali|stopped|ceased|nie ma już|nie ma
    """,
    ("modal", 0): """
        should|supposed|expected to|would|could|ought|powinno|powinien|powinna|powinny|miało
        |miał działać|miała działać|miały
    """,
    ("cond", 0): """
        if|unless|in case|jeśli|jeżeli|gdyby|w razie|o ile|w przypadku gdyby|jak coś|jakby co
        |jakby coś|gdyby coś|w razie czego|if anything|if needed|should anything|should it
    """,
    ("past", 0): """
        before|previously|earlier|used to|yesterday|was|were|had|last week|wcześniej|przedtem
        |poprzednio|wczoraj|był|była|było|były|byli|miałem|miałam|mieliśmy|miał|miała
    """,
    ("present", 0): """
        now|today|currently|right now|this morning|as before|than before|jak wcześniej
        |jak przedtem|jak poprzednio|co wcześniej|co przedtem|niż wcześniej|teraz|dziś|dzisiaj
        |obecnie|aktualnie|dziś rano|od rana|od wczoraj|since yesterday|since|since then
        |od tego czasu|again|once again|znowu|znów|ponownie
    """,
    ("contrast", 0): """
        but|however|although|though|yet still|ale|lecz|jednak|jednakże|natomiast|chociaż|choć
        |tylko że|aczkolwiek|mimo to
    """,
    ("anymore", 0): """
        not anymore|not any more|no longer|już nie|juz nie|nie już|już nie ma|nie więcej
    """,
    ("neutral", 0): """
        nie wiem na jak|nie wiem jak długo|nie wiem na ile|not sure how|not sure why
        |not sure what|don't know for how|don't know how long|
        appears to|appears to be|seems to|seems to be|looks to be|wydaje się|wydaje mi się|
        nie było mnie|nie ma mnie|mnie nie było|mnie nie ma|jestem na urlopie|na urlopie
        |na zwolnieniu|poza biurem|out of office|i was not in|i am not in|i am out|i am away
        |not in the office|on holiday|on vacation|on leave
        tak naprawdę|tak naprawde|tak czy inaczej|tak czy siak|tak jak|tak że|tak się składa
        |tak więc|i tak dalej|tak dalej|tak długo|tak szybko|tak często|tak bardzo|tak było
        |a tak|a tak poza tym|no cóż|no to|no i|no więc|nie ma za co|no need|nie ma potrzeby
        |nie trzeba|no rush|good morning|good afternoon|good evening|good day|good night|hi
        |hello|hey|dear|dzień dobry|dobry wieczór|witam|cześć|hej|szanowni państwo
        |szanowny panie|szanowna pani|kind regards|best regards|regards|best wishes|all the best
        |have a good day|have a nice day|have a great day|have a good weekend|miłego dnia
        |pozdrawiam|z poważaniem|hope you are well|hope you're well|hope you are fine
        |hope you are doing well|at work|from work|back at work|w pracy|co do|jeśli chodzi o
        |jeżeli chodzi o|chodzi o|chodziło o|as for|as far as|nie wiem co|nie wiem czemu
        |nie wiem dlaczego|nie wiem jak|don't know what|don't know why|don't know how
        |do not know what|do not know why|do not know how|no matter|nevermind|never mind
        |whatever|anyway|anyways|good news|nie wiem co było|nie ma problemu z
    """,
}

#: Lexicon entries whose meaning is not just their role: "no problem" and
#: „nie ma sprawy” read as a quiet yes, as people use them.
_QUIET_YES = ("no problem", "no worries", "nie ma sprawy", "not a problem", "not an issue")

_CONTRACTIONS = {
    "can't": ["can", "not"],
    "cant": ["can", "not"],
    "cannot": ["can", "not"],
    "won't": ["will", "not"],
    "wont": ["will", "not"],
    "shan't": ["shall", "not"],
    "ain't": ["is", "not"],
    "aint": ["is", "not"],
    "dont": ["do", "not"],
    "doesnt": ["does", "not"],
    "didnt": ["did", "not"],
    "isnt": ["is", "not"],
    "arent": ["are", "not"],
    "wasnt": ["was", "not"],
    "werent": ["were", "not"],
    "havent": ["have", "not"],
    "hasnt": ["has", "not"],
    "hadnt": ["had", "not"],
    "couldnt": ["could", "not"],
    "wouldnt": ["would", "not"],
    "shouldnt": ["should", "not"],
    "im": ["i", "am"],
    "ive": ["i", "have"],
    "thats": ["that", "is"],
    "theres": ["there", "is"],
}
_SUFFIXES = {"n't": "not", "'ll": "will", "'m": "am", "'re": "are", "'ve": "have", "'d": "would"}


def _expand(word: str) -> list[str]:
    """English contractions as words: "doesn't" is "does not", "I'll" is "I will"."""
    if word in _CONTRACTIONS:
        return list(_CONTRACTIONS[word])
    for suffix, full in _SUFFIXES.items():
        if word.endswith(suffix) and len(word) > len(suffix):
            return [word[: -len(suffix)], full]
    if word.endswith("'s") and len(word) > 2:
        return [word[:-2], "is"]
    return [word]


# Tokens: words (with inner apostrophes or hyphens), emoticons, emoji, breaks.
_EMOTICON = r"[:;=]'?-?[()dp/]"
_TOKEN = re.compile(
    rf"(?P<emo>{_EMOTICON})(?![a-z0-9])"
    r"|(?P<word>[a-z0-9]+(?:['-][a-z0-9]+)*'?)"
    r"|(?P<sent>[.!?;\n]+)"
    r"|(?P<clause>[,:()\[\]\"“”„«»–—]|\s-+\s|^-+\s)"
    r"|(?P<sym>[^\sa-z0-9])"
)
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


#: Words whose role depends on where they stand: „nie” answers or negates,
#: "no" answers or negates a noun, „tak” answers or means "so".
_SPECIAL = frozenset({"nie", "no", "tak"})
#: Words that leave „nie” at the end of a clause an answer („chyba nie”) and
#: not a negated state („skaner nie”).
_FILLER_WORDS = (
    "a i o oh well so hmm hm um no cóż więc to że chyba raczej jeszcze już niestety na razie "
    "narazie yet ok okay ja it this that jest się"
)
_FILLERS = frozenset(_fold(w) for w in _FILLER_WORDS.split())


# --- reading ----------------------------------------------------------------------------------


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


def _tokens(value: str) -> list[tuple[str, str]]:
    """(kind, text) pairs: kind is "w" (word or emoji), "clause" or "sent"."""
    out: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(_fold(value)):
        kind = match.lastgroup or "sym"
        token = match.group()
        if kind == "word":
            out += [("w", w) for w in _expand(token.strip("'"))]
        elif kind == "emo":
            out.append(("w", token))
        elif kind == "sym":
            if not unicodedata.category(token).startswith(("P", "Z", "C")):
                out.append(("w", token))  # an emoji
        else:
            out.append((kind, token))
    return out


#: "works, although it took a while": what is conceded is not the answer.
_CONCESSIVE = frozenset(_fold(w) for w in ["although", "though", "chociaż", "choć"])
#: "worked for an hour and then crashed": the later state is the one that holds.
_THEN = frozenset(_fold(w) for w in ["then", "potem", "później", "afterwards"])
_CONTRASTS = _THEN | frozenset(
    _fold(w)
    for w in [
        "but",
        "however",
        "although",
        "though",
        "ale",
        "lecz",
        "jednak",
        "jednakże",
        "natomiast",
        "chociaż",
        "choć",
    ]
)


def _sentences(value: str) -> list[list[list[str]]]:
    """Sentences of clauses of words; a contrast word starts a clause."""
    sentences: list[list[list[str]]] = [[[]]]
    for kind, token in _tokens(value):
        if kind == "sent":
            if token.strip() and "?" in token:
                sentences[-1].append(["?"])
            sentences.append([[]])
        elif kind == "clause":
            sentences[-1].append([])
        elif token in _CONTRASTS:
            sentences[-1].append([token])  # "works, but..." / „działa, ale...”
        else:
            sentences[-1][-1].append(token)
    return [[c for c in s if c] for s in sentences if any(s)]


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


def _window(own: str) -> str:
    """The first lines of the own text that can hold an answer."""
    lines: list[str] = []
    size = 0
    for line in own.split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if _is_signoff(stripped):
            break
        lines.append(stripped)
        size += len(stripped) + 1
        if len(lines) >= MAX_LINES + (1 if _is_greeting(lines[0]) else 0) or size >= MAX_CHARS:
            break
    joined = "\n".join(lines)
    if len(joined) > MAX_CHARS:
        joined = joined[:MAX_CHARS].rsplit(" ", 1)[0]
    return joined


_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening|day)|dzie[nń] dobry"
    r"|dobry wiecz[oó]r|cze[sś][cć]|witam|witaj|hej|szanown\w*)\b[^.!?]{0,40}[,!.:]?$",
    re.IGNORECASE,
)
_SIGNOFF = re.compile(
    r"^(?:pozdrawiam\w*|pozdr\.?|z powa[zż]aniem|z wyrazami szacunku|serdecznie pozdrawiam"
    r"|(?:kind |best |warm |many )?regards|best|br|sincerely|yours sincerely|cheers)[,.!]?$",
    re.IGNORECASE,
)


def _is_greeting(line: str) -> bool:
    return bool(_GREETING.match(line))


def _is_signoff(line: str) -> bool:
    return bool(_SIGNOFF.match(line))


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


_WH = frozenset(
    _fold(w)
    for w in [
        "co",
        "czemu",
        "dlaczego",
        "jak",
        "kto",
        "gdzie",
        "what",
        "why",
        "how",
        "who",
        "where",
    ]
)


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
