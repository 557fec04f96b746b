"""The instruction-following prompt sets: a topic task plus verifiable constraints.

Every prompt is `<task about a topic> <one instruction sentence per constraint>`, where the
instruction sentences come from `rlaif.instructions.constraints.describe`, so the text and the checker can
never drift apart. Families split the sets:

- `ifeval_id`  (in distribution):      format, length, keywords   — 1 to 3 constraints, one per family
- `ifeval_ood` (held-out families):    casing, structure          — 1 or 2 constraints, one per family

A policy trained on ID prompts meets casing and structure instructions only at evaluation, so
the ID−OOD gap measures whether instruction following generalizes to new kinds of instruction.
Many constraints are deliberately easy ("use at most 40 words", "include the word X",
"lowercase only", "end with 'Any other questions?'") so that a 135M model complies sometimes.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from rlaif.instructions.constraints import describe, validate

SEED = 20240611
ID_FAMILIES = ("format", "length", "keywords")
OOD_FAMILIES = ("casing", "structure")
N_ID = 240
N_OOD = 160


@dataclass(frozen=True)
class Topic:
    name: str
    keywords: tuple[str, str, str]  # words a good answer about the topic plausibly uses


TOPICS = [Topic(n, tuple(k.split())) for n, k in [
    ("honeybees", "hive pollen queen"),
    ("the water cycle", "rain evaporation clouds"),
    ("learning to ride a bicycle", "balance pedal helmet"),
    ("composting at home", "soil scraps worms"),
    ("the moon", "tides orbit craters"),
    ("volcanoes", "lava magma eruption"),
    ("saving money", "budget savings spending"),
    ("drinking enough water", "thirst health bottle"),
    ("public libraries", "books borrow quiet"),
    ("morning routines", "coffee alarm breakfast"),
    ("growing tomatoes", "seeds sunlight garden"),
    ("the printing press", "books ink Gutenberg"),
    ("airplanes", "wings lift engines"),
    ("recycling plastic", "bottles waste bins"),
    ("learning a new language", "vocabulary practice grammar"),
    ("keeping a houseplant alive", "water light pot"),
    ("sleep", "rest dreams brain"),
    ("owning a dog", "walks leash training"),
    ("cats as pets", "purr litter whiskers"),
    ("rainbows", "light colors rain"),
    ("the solar system", "planets sun orbit"),
    ("baking bread", "flour yeast oven"),
    ("making a cup of tea", "kettle leaves water"),
    ("writing a good email", "subject greeting reply"),
    ("preparing for a job interview", "questions resume practice"),
    ("riding public transport", "bus ticket schedule"),
    ("camping in the forest", "tent fire trees"),
    ("the ocean", "waves salt fish"),
    ("earthquakes", "plates shaking faults"),
    ("electric cars", "battery charging range"),
    ("solar panels", "sunlight energy roof"),
    ("the human heart", "blood pump beats"),
    ("washing your hands", "soap germs water"),
    ("team sports", "players coach practice"),
    ("chess", "pieces board strategy"),
    ("playing the guitar", "strings chords practice"),
    ("reading before bed", "books sleep habit"),
    ("the seasons of the year", "winter summer weather"),
    ("snow", "cold flakes winter"),
    ("deserts", "sand heat cactus"),
    ("rainforests", "trees rain animals"),
    ("bird migration", "flight south winter"),
    ("the internet", "computers network data"),
    ("passwords and online safety", "password account secure"),
    ("smartphones", "apps screen battery"),
    ("cooking rice", "pot water grains"),
    ("farmers markets", "vegetables local fresh"),
    ("going for a walk", "steps fresh park"),
    ("stretching after exercise", "muscles stretch body"),
    ("friendship", "trust friends time"),
    ("moving to a new city", "neighbors boxes home"),
    ("the first day at a new school", "teacher classmates nervous"),
    ("museums", "art history exhibits"),
    ("the telephone", "calls voice Bell"),
    ("bridges", "river steel engineers"),
    ("lighthouses", "ships light coast"),
    ("trains", "tracks station passengers"),
    ("maps", "roads directions scale"),
    ("clocks", "time hands hours"),
    ("coffee", "beans cup morning"),
    ("chocolate", "cocoa sweet beans"),
    ("apples", "fruit trees orchard"),
    ("the color blue", "sky ocean color"),
    ("thunderstorms", "lightning thunder rain"),
    ("wind turbines", "wind energy blades"),
    ("dinosaurs", "fossils extinct bones"),
    ("penguins", "ice swim Antarctica"),
    ("elephants", "trunk herd ivory"),
    ("recycling paper", "trees paper waste"),
    ("time management", "schedule tasks deadlines"),
    ("writing a diary", "thoughts pages daily"),
    ("birthday parties", "cake friends gifts"),
]]

TASKS = [
    "Tell me about {t}.",
    "Explain {t} to a ten-year-old.",
    "Describe {t} in simple terms.",
    "Write a short note to a friend about {t}.",
    "Share a few interesting facts about {t}.",
    "Write a short story that involves {t}.",
    "What should a beginner know about {t}?",
    "Write the opening of a blog post about {t}.",
]

GENERIC_EXCLUDE = ("very", "really", "important", "also", "thing", "many", "good", "because")
START_PHRASES = ("Sure", "Here is my answer", "Great question", "In short")
END_PHRASES = ("Any other questions?", "Is there anything else I can help with?", "Thanks for reading.",
               "That is all.")
PS_MARKERS = ("P.S.",)


def _format(rng: random.Random, topic: Topic, others: set[str]) -> dict:
    # Lists and JSON do not mix with sentence counts (every list line reads as a sentence).
    kinds = ["bullet_list", "numbered_list", "json", "title"]
    if "sentences" in others:
        kinds = ["title"]
    k = rng.choice(kinds)
    if k in ("bullet_list", "numbered_list"):
        return {"family": "format", "type": k, "n": rng.choice([2, 3, 3, 4, 5]), "relation": "exactly"}
    return {"family": "format", "type": k}


def _length(rng: random.Random, topic: Topic, others: set[str]) -> dict:
    k = rng.choice(["words", "words", "sentences", "characters"])
    if k == "words":
        rel = rng.choice(["at most", "at most", "at least"])
        n = rng.choice([20, 30, 40, 50]) if rel == "at most" else rng.choice([30, 50, 80])
        return {"family": "length", "type": "words", "n": n, "relation": rel}
    if k == "sentences":
        rel = rng.choice(["at most", "exactly"])
        return {"family": "length", "type": "sentences", "n": rng.choice([1, 2, 3]), "relation": rel}
    return {"family": "length", "type": "characters", "n": rng.choice([150, 200, 300]), "relation": "at most"}


def _keywords(rng: random.Random, topic: Topic, others: set[str]) -> dict:
    k = rng.choice(["include", "include", "exclude", "frequency"])
    if k == "include":
        chosen = sorted(rng.sample(topic.keywords, rng.choice([1, 2])))
        return {"family": "keywords", "type": "include", "words": chosen}
    if k == "exclude":
        word = rng.choice([rng.choice(topic.keywords).lower(), rng.choice(GENERIC_EXCLUDE)])
        return {"family": "keywords", "type": "exclude", "words": [word]}
    return {"family": "keywords", "type": "frequency", "word": rng.choice(topic.keywords), "n": rng.choice([2, 3]),
            "relation": "at least"}


def _casing(rng: random.Random, topic: Topic, others: set[str]) -> dict:
    k = rng.choice(["lowercase", "lowercase", "uppercase", "capital_words"])
    if k == "capital_words":
        return {"family": "casing", "type": k, "n": rng.choice([1, 2, 3]), "relation": "at least"}
    return {"family": "casing", "type": k}


def _structure(rng: random.Random, topic: Topic, others: set[str]) -> dict:
    k = rng.choice(["paragraphs", "start_phrase", "end_phrase", "end_phrase", "no_commas", "quotation", "postscript"])
    if k == "paragraphs":
        return {"family": "structure", "type": k, "n": rng.choice([2, 3]), "relation": "exactly"}
    if k == "start_phrase":
        return {"family": "structure", "type": k, "phrase": rng.choice(START_PHRASES)}
    if k == "end_phrase":
        return {"family": "structure", "type": k, "phrase": rng.choice(END_PHRASES)}
    if k == "postscript":
        return {"family": "structure", "type": k, "marker": rng.choice(PS_MARKERS)}
    return {"family": "structure", "type": k}


_MAKERS = {"format": _format, "length": _length, "keywords": _keywords, "casing": _casing, "structure": _structure}


def build_split(split: str, n: int, families: tuple[str, ...], seed: int) -> list[dict]:
    """`n` prompt records for one split; each prompt uses at most one constraint per family."""
    rng = random.Random(f"{seed}-{split}")
    max_k = len(families)
    weights = [0.4, 0.4, 0.2][:max_k]
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)] if i < len(TOPICS) else rng.choice(TOPICS)
        task = rng.choice(TASKS).format(t=topic.name)
        k = rng.choices(range(1, max_k + 1), weights=weights)[0]
        chosen = sorted(rng.sample(families, k), key=families.index)
        # Length is drawn first so format can avoid a clash with sentence counts.
        order = sorted(chosen, key=lambda f: (f != "length", families.index(f)))
        made: dict[str, dict] = {}
        for fam in order:
            made[fam] = _MAKERS[fam](rng, topic, {c["type"] for c in made.values()})
        constraints = [made[f] for f in chosen]
        for c in constraints:
            validate(c)
        text = " ".join([task, *(describe(c) for c in constraints)])
        out.append({
            "prompt_id": f"ifeval-{split}-{i + 1:03d}",
            "prompt": text,
            "category": "+".join(chosen),
            "split": split,
            "topic": topic.name,
            "constraints": constraints,
        })
    return out


def build(seed: int = SEED) -> dict[str, list[dict]]:
    """Both splits: {"ifeval_id": [...], "ifeval_ood": [...]}."""
    return {"ifeval_id": build_split("id", N_ID, ID_FAMILIES, seed),
            "ifeval_ood": build_split("ood", N_OOD, OOD_FAMILIES, seed)}
