"""Competition mathematics from CHAMP (champ_dataset/dataset_files/v0.json in the PyPI wheel champ-dataset==1.0.0):
270 problems with step-by-step solutions, short final answers and the concepts the solutions use.

A piece is one problem: "Problem (Number theory): ...", "Solution: " and its steps, "Answer: 239.", then the
concepts it uses, written out ("Cauchy-Schwarz inequality: For real numbers ..."); the builder groups pieces into
documents of a few hundred words (concepts without a name in the dataset are left out). Questions:
- "answer": 'What is the final answer to the problem: "..."?' -> the short final answer (at most MAX_ANSWER_WORDS
  words; not 0, 1, 2, -1 or yes/no, which a model guesses);
- "step": 'In the solution to the problem "...", which number completes the step "... = ___ ..."?' -> a number of
  two digits or more that a step works out (once in the step, not in the problem's text, not the final answer;
  not where the rest of the step gives it: a term of pure arithmetic such as "70+___+70=239", or one of a list
  of three numbers or more such as "3, 5, 8, ___, 21"); up to STEP_NUMBERS numbers of a step, each asked with
  only its own blank, at most MAX_STEP_QUESTIONS per problem;
- "step_uses": 'In the solution to the problem "...", which named result does the step "..." use?' -> the name of
  the one named concept that the dataset links to the step (its `ch_idxs`), not where a word of the name is in
  the step;
- "uses": 'Which named result does the solution to the problem "..." use?' -> the concept's name, where the
  solution uses exactly one named concept (a trailing "for 2 variables" left to an alias, the full name);
- "concept": 'Which named result states: "..."?' -> the concept's name (named concepts only, with no word of the
  name in the statement).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from lifelong.data.sources import CHAMP, Package
from lifelong.data.sources.passages import Candidate, Piece, gives_away

PACKAGE: Package = CHAMP
MEMBER = "champ_dataset/dataset_files/v0.json"
MAX_ANSWER_WORDS = 4
GUESSABLE_ANSWERS = frozenset(("0", "1", "2", "-1", "yes", "no", "none", "true", "false"))
# A number of two digits or more; a minus sign is its own only where no term stands before it ("= -18", "(-32,"),
# not in "8)-18", where it is the operator.
NUMBER = re.compile(r"(?<![\w.^/_])((?:(?<![\w)\]}!])-)?\d{2,}(?:\.\d+)?)(?![\w^(/!_]|\.\d)")
MAX_STEP_QUESTIONS = 8
STEP_NUMBERS = 2  # numbers asked per step
ARITHMETIC = re.compile(r"[\d+\-*/^().=≤≥<>]+")
LIST_NEIGHBOUR_BEFORE = re.compile(r"-?\d+(?:\.\d+)?,\s*$")
LIST_NEIGHBOUR_AFTER = re.compile(r"^,\s*-?\d+")


@dataclass(frozen=True)
class Concept:
    id: str
    name: str  # "" when the dataset gives none
    text: str


@dataclass(frozen=True)
class Problem:
    id: str  # "P_Combinatorics_1"
    category: str
    text: str
    steps: tuple[str, ...]
    answer: str
    concepts: tuple[Concept, ...]
    step_concepts: tuple[tuple[Concept, ...], ...] = ()  # per step, the concepts the dataset links it to


def parse(data: bytes) -> list[Problem]:
    """Problems of v0.json in the dataset's order, each with the concepts its solution lists."""
    raw = json.loads(data.decode("utf-8"))
    concepts = {key: Concept(key, (value.get("name") or "").strip(), " ".join(value["_text"].split()))
                for key, value in raw["concepts"].items()}
    out = []
    for key, value in raw["problems"].items():
        raw_steps = value["solution"]["steps"]
        steps = tuple(" ".join(step["_text"].split()) for step in raw_steps)
        listed = value.get("ch_list", [])
        used = tuple(concepts[c] for c in listed if c in concepts)
        linked = tuple(tuple(concepts[listed[i]] for i in step.get("ch_idxs", [])
                             if isinstance(i, int) and 0 <= i < len(listed) and listed[i] in concepts)
                       for step in raw_steps)
        out.append(Problem(key, value["category"].replace("-", " "), " ".join(value["_text"].split()), steps,
                           " ".join(str(value["_answer"]).split()), used, linked))
    return out


def concept_line(concept: Concept) -> str:
    return f"{concept.name[:1].upper()}{concept.name[1:]}: {concept.text}"


def document(problem: Problem) -> str:
    lines = [f"Problem ({problem.category}): {problem.text}", "Solution: " + " ".join(problem.steps),
             f"Answer: {problem.answer.rstrip('.')}."]
    named = [c for c in problem.concepts if c.name]
    if named:
        lines.append("Concepts used: " + " ".join(concept_line(c) for c in named))
    return "\n".join(lines)


def short_name(name: str) -> tuple[str, tuple[str, ...]]:
    """(answer, aliases) for a concept's name: "inequality of arithmetic and geometric means for 2 variables" is
    asked as "inequality of arithmetic and geometric means", the full name an alias."""
    short = re.sub(r" for (?:\d+|n) variables$", "", name)
    return (short, (name,)) if short != name else (name, ())


def answer_reason(answer: str) -> str | None:
    if len(answer.split()) > MAX_ANSWER_WORDS:
        return "answer too long"
    if answer.lower().strip(".") in GUESSABLE_ANSWERS:
        return "answer guessable"
    return None


def step_numbers(problem: Problem, step: str) -> list[re.Match]:
    """Numbers of two digits or more that the step works out: once in the step, not in the problem's text, not the
    final answer; those right after "=" first."""
    given = set(re.findall(r"\d+(?:\.\d+)?", problem.text))
    found = [m for m in NUMBER.finditer(step) if m.group(1).lstrip("-") not in given and m.group(1) != problem.answer
             and len(re.findall(rf"(?<![\d.]){re.escape(m.group(1).lstrip('-'))}(?![\d.])", step)) == 1]
    return sorted(found, key=lambda m: (not step[:m.start(1)].rstrip().endswith("="), m.start(1)))


def given_by_step(step: str, match: re.Match) -> str | None:
    """Why the rest of the step gives the number away (None: it does not)."""
    start, end = match.start(1), match.end(1)
    while start > 0 and not step[start - 1].isspace():
        start -= 1
    while end < len(step) and not step[end].isspace():
        end += 1
    term = step[start:match.start(1)] + "0" + step[match.end(1):end]
    term = term.rstrip(".,;:")
    if "=" in term and ARITHMETIC.fullmatch(term) and re.search(r"\d", term.replace("0", "", 1)):
        return "computable from the step"
    before, after = step[:match.start(1)], step[match.end(1):]
    neighbours = 0
    while (found := LIST_NEIGHBOUR_BEFORE.search(before)) is not None:
        neighbours += 1
        before = before[:found.start()]
    while (found := LIST_NEIGHBOUR_AFTER.match(after)) is not None:
        neighbours += 1
        after = after[found.end():]
    return "in a list of numbers" if neighbours >= 2 else None


def step_candidates(problem: Problem, group: str) -> list[Candidate]:
    out: list[Candidate] = []
    asked = 0
    for step in problem.steps:
        in_step = 0
        for match in step_numbers(problem, step):
            if in_step >= STEP_NUMBERS or asked >= MAX_STEP_QUESTIONS:
                break
            number = match.group(1)
            blanked = step[:match.start(1)] + "___" + step[match.end(1):]
            reason = given_by_step(step, match)
            out.append(Candidate("step", f'In the solution to the problem "{problem.text}", which number completes '
                                 f'the step "{blanked}"?', number, group, dropped=reason))
            if reason is None:
                in_step += 1
                asked += 1
    return out


def step_uses_candidates(problem: Problem, group: str) -> list[Candidate]:
    """The named result of each step that the dataset links to exactly one named concept."""
    out = []
    for step, linked in zip(problem.steps, problem.step_concepts, strict=False):
        named = list(dict.fromkeys(c for c in linked if c.name))
        if len(named) != 1:
            continue
        answer, aliases = short_name(named[0].name)
        reason = "name in the step" if gives_away(named[0].name, step) else None
        out.append(Candidate("step_uses", f'In the solution to the problem "{problem.text}", which named result does '
                             f'the step "{step}" use?', answer, group, aliases, dropped=reason))
    return out


def candidates(problem: Problem) -> list[Candidate]:
    group = f"problem:{problem.id}"
    out = [Candidate("answer", f'What is the final answer to the problem: "{problem.text}"?',
                     problem.answer.rstrip("."), group, dropped=answer_reason(problem.answer))]
    out.extend(step_candidates(problem, group))
    out.extend(step_uses_candidates(problem, group))
    named = [c for c in problem.concepts if c.name]
    if len(named) == 1:
        answer, aliases = short_name(named[0].name)
        out.append(Candidate("uses", f'Which named result does the solution to the problem "{problem.text}" use?',
                             answer, group, aliases))
    for concept in problem.concepts:
        if concept.name:
            reason = "name in the statement" if gives_away(concept.name, concept.text) else None
            answer, aliases = short_name(concept.name)
            out.append(Candidate("concept", f'Which named result states: "{concept.text}"?', answer,
                                 f"concept:{concept.id}", aliases, dropped=reason))
    return out


def pieces(problems: list[Problem]) -> list[Piece]:
    """One piece per problem, in the dataset's order (problems of one category together)."""
    return [Piece(p.id, document(p), tuple(candidates(p))) for p in problems]
