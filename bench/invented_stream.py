"""Writes a documents-only stream of invented facts: what a user's folder of files looks like.

    python bench/invented_stream.py OUT_DIR [--seed 0] [--documents 12]

Three domains (towns, creatures, chronicles), each a JSONL file of documents (a few sentences each,
about invented places, animals and events, so the base model cannot know them) and `qa` eval
questions, asked in other words than the documents use (the answer is in the text; the phrasing is
not). No practice questions, no core set, no canary: the learner sees only documents, the evaluator
alone sees the questions. One seed fixes every name and number, so the same command writes the
same stream.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SYLLABLES = ["ka", "vel", "mor", "tin", "os", "bra", "quel", "dun", "ri", "sha", "lo", "ner", "vi", "tor",
             "ush", "pel", "gar", "zen", "ith", "mab"]
MATERIALS = ["granite", "oak", "copper", "river clay", "black iron", "limestone", "cedar", "bronze"]
ANIMALS = ["heron", "badger", "salmon", "owl", "stag", "otter", "hare", "falcon"]
GOODS = ["salt", "wool", "amber", "honey", "tin", "dyed linen", "barley", "pottery"]
COLOURS = ["violet", "amber", "grey", "crimson", "white", "green", "blue", "yellow"]
FOODS = ["moss", "beetles", "reeds", "acorns", "snails", "lichen", "minnows", "berries"]
CAUSES = ["a flood", "a long drought", "a comet", "a fire", "a plague of locusts", "an earthquake"]


def name(rng: random.Random, parts: int = 2) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def town(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    t, river, port, fest, mayor = name(rng), name(rng), name(rng), name(rng), f"{name(rng)} {name(rng, 3)}"
    material, year = rng.choice(MATERIALS), rng.randint(300, 1900)
    good, animal = rng.choice(GOODS), rng.choice(ANIMALS)
    goats = rng.randint(3, 90)
    text = (f"The town of {t} stands on the banks of the river {river}. Its old bridge was built of {material} "
            f"in {year}. The people of {t} trade mostly in {good}, which they ship to the port of {port}. "
            f"Every spring they hold the {fest} festival in honour of the {animal}. The mayor, {mayor}, "
            f"keeps {goats} goats.")
    questions = [(f"Which river flows past {t}?", river),
                 (f"What material is the old bridge of {t} made of?", material),
                 (f"In which year was the bridge of {t} built?", str(year)),
                 (f"What does {t} mainly trade in?", good), (f"Where does {t} send its goods?", port),
                 (f"Which animal is honoured at the spring festival of {t}?", animal),
                 (f"What is the name of {t}'s spring festival?", fest), (f"Who is the mayor of {t}?", mayor),
                 (f"How many goats does the mayor of {t} own?", str(goats))]
    return text, questions


def creature(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    c, forest, scholar = name(rng, 3), name(rng), f"{name(rng)} {name(rng)}"
    colour, food, legs, years, eggs = rng.choice(COLOURS), rng.choice(FOODS), rng.choice([4, 6, 8, 10]), \
        rng.randint(5, 60), rng.randint(2, 30)
    text = (f"The {c} is a small animal found only in the forest of {forest}. It has {colour} fur and "
            f"{legs} legs, and it feeds on {food}. A {c} can live for {years} years and lays {eggs} eggs "
            f"at a time. It was first described by the scholar {scholar}.")
    questions = [(f"In which forest does the {c} live?", forest), (f"What colour is the fur of the {c}?", colour),
                 (f"How many legs does a {c} have?", str(legs)), (f"What does the {c} eat?", food),
                 (f"For how many years can a {c} live?", str(years)),
                 (f"How many eggs does a {c} lay at once?", str(eggs)),
                 (f"Who first described the {c}?", scholar)]
    return text, questions


def chronicle(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    kingdom, king, city, general = name(rng), f"King {name(rng)}", name(rng), name(rng, 3)
    year, cause, days = rng.randint(200, 1500), rng.choice(CAUSES), rng.randint(3, 200)
    text = (f"In the year {year}, {king} of {kingdom} moved his court to the city of {city} after {cause}. "
            f"His general, {general}, held the city gates for {days} days against the northern clans.")
    questions = [(f"In what year did the court of {kingdom} move?", str(year)),
                 (f"To which city did {king} move his court?", city),
                 (f"What made {king} move his court?", cause), (f"Who was {king}'s general?", general),
                 (f"For how many days were the gates of {city} held?", str(days)),
                 (f"Which kingdom did {king} rule?", kingdom)]
    return text, questions


DOMAINS = {"a_towns": town, "b_creatures": creature, "c_chronicles": chronicle}


def write_stream(out: Path, seed: int = 0, documents: int = 12) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for domain, make in DOMAINS.items():
        rng = random.Random(f"{seed}-{domain}")
        records = []
        for _ in range(documents):
            text, questions = make(rng)
            records.append({"kind": "document", "text": text})
            records += [{"kind": "qa", "split": "eval", "question": q, "answer": a} for q, a in questions]
        (out / f"{domain}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--documents", type=int, default=12, help="documents per domain")
    args = parser.parse_args()
    print(write_stream(args.out, args.seed, args.documents))


if __name__ == "__main__":
    main()
