"""Synthetic long conversations for ``llmos bench paging --synthetic N``.

Each conversation mixes fact turns (a name, a number, an id, a date) with
filler chatter, and asks questions whose evidence is one fact turn. Half of
the questions reuse the fact's exact words (a name, an invoice number);
the other half paraphrase it ("where did I leave the car" for "I parked on
level 3"), so the workload needs both exact-match and meaning-based recall.
Many facts share a template with different values, so a retriever must pick
the right invoice among several, not just any invoice.

Deterministic for a given seed. Output rows follow the benchmark's format:
{"id", "turns": [{"id", "speaker", "text"}], "questions": [{"question", "evidence"}]}.
"""

from __future__ import annotations

import random

NAMES = ["Anna Kowalski", "Bruno Salazar", "Chen Wei", "Dagny Lund", "Emeka Obi", "Fatima Zahra",
         "Gustav Brandt", "Hana Sato", "Ines Moreau", "Jonas Berg", "Kofi Mensah", "Lucia Ferri",
         "Mateo Ruiz", "Nadia Petrova", "Omar Haddad", "Priya Nair", "Quentin Roux", "Rosa Lindqvist"]
DEPTS = ["finance", "legal", "logistics", "research", "marketing", "security", "procurement"]
CITIES = ["Lisbon", "Osaka", "Nairobi", "Tallinn", "Quito", "Adelaide", "Montreal", "Krakow"]
ITEMS = ["printer toner", "standing desk", "laptop dock", "office chairs", "projector", "coffee machine"]
RELATIONS = ["sister", "brother", "mother", "father", "cousin", "best friend"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
PLACES = ["beach house", "office", "library", "cabin", "studio", "gym"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
HOBBIES = ["pottery", "rock climbing", "chess", "sailing", "birdwatching", "baking sourdough"]

FILLER_USER = [
    "I had a long day today, lots of emails.", "What do you think about learning a new language?",
    "The weather has been strange this week.", "Can you suggest a good book for the weekend?",
    "I need to remember to water the plants.", "Traffic was terrible this morning.",
    "I am thinking about redecorating the living room.", "Do you have tips for sleeping better?",
    "My laptop has been slow lately.", "I watched a documentary about volcanoes yesterday.",
    "Lunch was a salad again, I should cook more.", "The new project kickoff went fine.",
    "I might go hiking if it does not rain.", "How do people stay motivated when working from home?",
    "I keep forgetting to reply to messages.", "The neighbours are renovating their kitchen.",
]
FILLER_ASSISTANT = [
    "That sounds tiring; a short walk can help reset.", "Learning a language is rewarding if you practise daily.",
    "Noted. Let me know if you want a reminder.", "A mystery novel could be a relaxing choice.",
    "Good idea to plan it ahead.", "I hope the rest of the day is calmer.",
    "Small changes like new lighting can make a big difference.", "A regular schedule often helps with sleep.",
    "Closing unused programs may speed it up.", "Volcanoes are fascinating, especially their history.",
    "Cooking in batches on Sunday saves time.", "Great to hear the kickoff went well.",
]


def _fact(rng: random.Random, used: set) -> tuple[str, list[tuple[str, str]]]:
    """One fact turn and its questions: (question, style) with style exact/paraphrase."""
    while True:
        kind = rng.randrange(7)
        if kind == 0:
            name, dept, city = rng.choice(NAMES), rng.choice(DEPTS), rng.choice(CITIES)
            key = ("dept", name)
            text = f"My colleague {name} just moved to the {dept} team in {city}."
            qs = [(f"Which team does {name} work in now?", "exact"),
                  (f"In which city is {name} based these days?", "exact")]
        elif kind == 1:
            item, inv = rng.choice(ITEMS), f"INV-{rng.randrange(10000, 99999)}"
            key = ("inv", item)
            text = f"For my records: the {item} order has invoice number {inv}."
            qs = [(f"What was the invoice number for the {item}?", "exact")]
        elif kind == 2:
            level, spot = rng.randrange(1, 9), f"{rng.choice('ABCDEFG')}{rng.randrange(10, 99)}"
            key = ("car", 0)
            text = f"I parked the car on level {level} of the garage, spot {spot}."
            qs = [("Where did I leave my vehicle?", "paraphrase")]
        elif kind == 3:
            rel, month, day = rng.choice(RELATIONS), rng.choice(MONTHS), rng.randrange(1, 29)
            key = ("bday", rel)
            text = f"My {rel}'s birthday is on {month} {day}, I must not forget it."
            qs = [(f"When was my {rel} born?", "paraphrase")]
        elif kind == 4:
            place = rng.choice(PLACES)
            pw = f"{rng.choice(['blue', 'quiet', 'amber', 'north'])}-{rng.choice(['fox', 'river', 'owl', 'pine'])}-{rng.randrange(10, 99)}"
            key = ("wifi", place)
            text = f"The wifi password at the {place} is {pw}."
            qs = [(f"How do I get on the internet at the {place}?", "paraphrase")]
        elif kind == 5:
            name, day, hour = rng.choice(NAMES), rng.choice(DAYS), rng.randrange(8, 18)
            key = ("meet", name)
            text = f"The meeting with {name} has been moved to {day} at {hour}:00."
            qs = [(f"When am I seeing {name}?", "exact")]
        else:
            name, hobby = rng.choice(NAMES), rng.choice(HOBBIES)
            key = ("hobby", name)
            text = f"{name} told me that on weekends they spend hours on {hobby}."
            qs = [(f"What does {name} like to do in their free time?", "exact")]
        if key not in used:  # one fact per key, so each question has one right answer
            used.add(key)
            return text, qs


def conversation(rng: random.Random, cid: str, turns: int = 60, questions: int = 8) -> dict:
    rows, qs, used = [], [], set()
    # About half the user turns state a fact: many facts share a template (several
    # colleagues, several invoices), so recall needs the exact name or item, not the topic.
    user_turns = range(0, turns - 4, 2)
    fact_slots = set(rng.sample(user_turns, min(len(user_turns), max(questions + 4, len(user_turns) // 2))))
    for i in range(0, turns, 2):
        if i in fact_slots:
            text, fact_qs = _fact(rng, used)
            rows.append({"id": f"{cid}-t{i}", "speaker": "user", "text": text})
            qs += [{"question": q, "evidence": [f"{cid}-t{i}"], "style": style} for q, style in fact_qs]
        else:
            rows.append({"id": f"{cid}-t{i}", "speaker": "user", "text": rng.choice(FILLER_USER)})
        rows.append({"id": f"{cid}-t{i + 1}", "speaker": "assistant", "text": rng.choice(FILLER_ASSISTANT)})
    rng.shuffle(qs)
    return {"id": cid, "turns": rows, "questions": qs[:questions]}


def generate(n: int, seed: int = 0, turns: int = 60, questions: int = 8) -> list[dict]:
    rng = random.Random(seed)
    return [conversation(rng, f"c{i}", turns, questions) for i in range(n)]


def filler_texts(n: int, seed: int = 1) -> list[str]:
    """Distinct filler pages for scale runs (many pages already in swap)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.choice(FILLER_USER), rng.choice(FILLER_ASSISTANT)
        out.append(f"{a} {b} (note {i}: {rng.choice(CITIES)}, {rng.choice(HOBBIES)}, {rng.choice(MONTHS)})")
    return out
