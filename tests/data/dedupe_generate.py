"""Deterministic labelled customer records for dedupe quality (tests and bench/bench_embeddings).

Each entity gets a canonical record and 0-3 variants with realistic noise: nickname/typo in
the first name, street suffix abbreviations (Street/St, Avenue/Ave), dropped middle initial,
case changes, swapped "Last, First" order, missing apartment. Rows sharing ``entity`` are
duplicates. Run ``python tests/data/dedupe_generate.py`` to rewrite dedupe_records.csv.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

FIRST = ["John", "Mary", "Robert", "Patricia", "Michael", "Linda", "William", "Elizabeth", "David", "Barbara",
         "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Nancy",
         "Matthew", "Lisa", "Anthony", "Margaret", "Mark", "Sandra", "Steven", "Ashley", "Andrew", "Emily"]
NICK = {"John": "Jon", "Robert": "Bob", "William": "Bill", "Elizabeth": "Liz", "Michael": "Mike",
        "Richard": "Rick", "Joseph": "Joe", "Thomas": "Tom", "Charles": "Chuck", "Daniel": "Dan",
        "Matthew": "Matt", "Anthony": "Tony", "Steven": "Steve", "Andrew": "Andy", "Patricia": "Pat",
        "Margaret": "Maggie", "Jessica": "Jess", "Susan": "Sue", "Barbara": "Barb", "Sandra": "Sandy"}
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor", "Moore", "Jackson", "Martin", "Lee",
        "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King"]
STREETS = ["Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Sunset",
           "Highland", "River", "Church", "Spring", "Center", "Forest", "Meadow", "Ridge", "Valley"]
SUFFIX = {"Street": "St", "Avenue": "Ave", "Road": "Rd", "Boulevard": "Blvd", "Drive": "Dr", "Lane": "Ln"}
CITIES = ["Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton", "Fairview", "Salem",
          "Madison", "Georgetown", "Arlington", "Ashland", "Burlington", "Manchester", "Oxford"]


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice(["drop", "swap", "double"])
    if op == "drop":
        return word[:i] + word[i + 1:]
    if op == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + word[i] + word[i:]


def variant(rec: dict[str, str], rng: random.Random) -> str:
    first, last, number, street, suffix, city = (rec[k] for k in ("first", "last", "number", "street", "suffix",
                                                                     "city"))
    changes = rng.sample(["nick", "typo_first", "typo_last", "abbrev", "order", "case", "city_typo"], k=2)
    if "nick" in changes and first in NICK:
        first = NICK[first]
    elif "typo_first" in changes:
        first = typo(first, rng)
    if "typo_last" in changes:
        last = typo(last, rng)
    if "abbrev" in changes:
        suffix = SUFFIX[suffix]
    if "city_typo" in changes:
        city = typo(city, rng)
    name = f"{last}, {first}" if "order" in changes else f"{first} {last}"
    text = f"{name}, {number} {street} {suffix}, {city}"
    return text.lower() if "case" in changes else text


def generate(n_entities: int = 300, seed: int = 20261123) -> list[tuple[int, int, str]]:
    rng = random.Random(seed)
    rows: list[tuple[int, int, str]] = []
    for entity in range(n_entities):
        rec = {"first": rng.choice(FIRST), "last": rng.choice(LAST), "number": str(rng.randrange(1, 9999)),
               "street": rng.choice(STREETS), "suffix": rng.choice(list(SUFFIX)), "city": rng.choice(CITIES)}
        rows.append((len(rows) + 1, entity,
                     f"{rec['first']} {rec['last']}, {rec['number']} {rec['street']} {rec['suffix']}, {rec['city']}"))
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            rows.append((len(rows) + 1, entity, variant(rec, rng)))
    return rows


def main() -> None:
    out = Path(__file__).with_name("dedupe_records.csv")
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "entity", "text"])
        w.writerows(generate())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
