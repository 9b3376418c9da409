"""Competition mathematics from CHAMP (champ_dataset/dataset_files/v0.json in the PyPI wheel champ-dataset==1.0.0):
270 problems with step-by-step solutions, short final answers and the concepts the solutions use.

A piece is one problem: "Problem (Number theory): ...", "Solution: " and its steps, "Answer: 239.", then the
concepts it uses, written out ("Cauchy-Schwarz inequality: For real numbers ..."); the builder groups pieces into
documents of a few hundred words (concepts without a name in the dataset are left out). Questions:
- "answer": 'What is the final answer to the problem: "..."?' -> the short final answer (at most MAX_ANSWER_WORDS
  words; not 0, 1, 2, -1 or yes/no, which a model guesses);
- "step": 'In the solution to the problem "...", which number completes the step "... = ___ ..."?' -> a number of
  two digits or more that a step works out (once in the step, not in the problem's text, not the final answer;
  one per step, at most MAX_STEP_QUESTIONS per problem);
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
NUMBER = re.compile(r"(?<![\w.^/_])(-?\d{2,}(?:\.\d+)?)(?![\w^(/!_]|\.\d)")
MAX_STEP_QUESTIONS = 6


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


def parse(data: bytes) -> list[Problem]:
    """Problems of v0.json in the dataset's order, each with the concepts its solution lists."""
    raw = json.loads(data.decode("utf-8"))
    concepts = {key: Concept(key, (value.get("name") or "").strip(), " ".join(value["_text"].split()))
                for key, value in raw["concepts"].items()}
    out = []
    for key, value in raw["problems"].items():
        steps = tuple(" ".join(step["_text"].split()) for step in value["solution"]["steps"])
        used = tuple(concepts[c] for c in value.get("ch_list", []) if c in concepts)
        out.append(Problem(key, value["category"].replace("-", " "), " ".join(value["_text"].split()), steps,
                           " ".join(str(value["_answer"]).split()), used))
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


def step_candidates(problem: Problem, group: str) -> list[Candidate]:
    out = []
    for step in problem.steps:
        for match in step_numbers(problem, step):
            number = match.group(1)
            blanked = step[:match.start(1)] + "___" + step[match.end(1):]
            out.append(Candidate("step", f'In the solution to the problem "{problem.text}", which number completes '
                                 f'the step "{blanked}"?', number, group))
            break
        if len(out) >= MAX_STEP_QUESTIONS:
            break
    return out


def candidates(problem: Problem) -> list[Candidate]:
    group = f"problem:{problem.id}"
    out = [Candidate("answer", f'What is the final answer to the problem: "{problem.text}"?',
                     problem.answer.rstrip("."), group, dropped=answer_reason(problem.answer))]
    out.extend(step_candidates(problem, group))
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
