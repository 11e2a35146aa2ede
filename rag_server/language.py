"""Is a question in a language the default models read? all-MiniLM-L6-v2 and the answer scorer
were trained on English; a question in another language retrieves noise, and a refusal that says
"the documents are silent" would then be false. Cheap signals only: the script, and which
language's function words the question uses."""

from __future__ import annotations

import re

from rag_server.grounding import STOPWORDS, sentence_spans

_WORD = re.compile(r"[^\W\d_]+")
# Frequent function words of the languages users most often try (French, German, Spanish,
# Italian, Portuguese, Dutch) that are not also English words.
_FOREIGN = frozenset(
    """le la les des du est une pour dans qui que quel quelle quels combien quand pourquoi comment
    où avec sont être avoir nous vous ils elles leur der die das und ist nicht ein eine einen
    wie wann warum welche welcher wer wo mit für auf sind ich sie wir ihr kann muss el los las
    por para una del qué cuál cuánto cuántos cuántas cuándo dónde cómo porque está son con
    il di che sono per gli della delle quanto quanti quando perché dove come sei ho
    não você quantos quantas onde são uma het een niet van wat hoe waarom welke zijn kan""".split()
)


def reads_as_english(question: str) -> bool:
    """False when the question is most likely not English: mostly non-Latin letters, or more
    foreign function words than English ones (at least two)."""
    letters = [c for c in question if c.isalpha()]
    if not letters:
        return True
    if sum(c.isascii() for c in letters) / len(letters) < 0.6:
        return False
    words = _WORD.findall(question.lower())
    foreign = sum(w in _FOREIGN for w in words)
    english = sum(w in STOPWORDS for w in words)
    return not (foreign >= 2 and foreign > english)


# Pronouns that stand for something the message said before the question.
_POINTS_BACK = frozenset({"it", "its", "this", "these", "those", "they", "them"})


def focus(question: str, max_words: int = 40, min_words: int = 8) -> str:
    """The sentence that asks, when a long message ends in its real question: a paragraph of
    context would otherwise drown it in retrieval and in the answer model's reading. A short one
    points back ("Why does this happen?"), so it keeps the sentences just before it until it has
    `min_words`, within `max_words`; so does one holding a pronoun that may point back ("…was
    exposed last week. What's the latest we can tell you about it?"), with the sentence just
    before it, and the one before that while the kept one points back too ("It is a hatchback.");
    one sentence more costs little, a lost subject costs the answer."""
    if len(question.split()) <= max_words:
        return question
    sentences = [question[lo:hi] for lo, hi in sentence_spans(question)]
    asking = [i for i, s in enumerate(sentences) if s.rstrip().endswith("?")]
    end = asking[-1] if asking else len(sentences) - 1  # over max_words: never empty
    start, words = end, len(sentences[end].split())
    pointing = _points_back(sentences[end])
    while (words < min_words or pointing) and start > 0:
        before = len(sentences[start - 1].split())
        if words + before > max_words:
            break
        start, words = start - 1, words + before
        pointing = _points_back(sentences[start])  # "It is a hatchback.": the subject is further
    return " ".join(sentences[start : end + 1]) if words >= 4 else question


def _points_back(sentence: str) -> bool:
    return not _POINTS_BACK.isdisjoint(_WORD.findall(sentence.lower()))
