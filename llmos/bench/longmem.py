"""A hard development set for the page-fault retriever: long, realistic chat histories.

``synthetic.py``'s set is solved by any retriever, so it cannot tell good page-in from bad.
This set was written for llmos from scratch (its people, places and phrasings are invented
here, not taken from a public benchmark). Each conversation is one user talking to an
assistant over ``sessions`` days (2 to 14 days apart), ``turns_per_session`` turns a day,
about 400 turns in all, most of them everyday chat: work, cooking, weather, plans, TV,
exercise, family, errands. Then come 24 to 36 questions, asked after the last session,
each naming the turns that hold its answer (its evidence). Six kinds, at least four each:

``fact``
    a detail said once (a name, a code, a number), asked with some of its words. Hard
    because three or four other turns talk about the same thing without the detail ("the
    dentist appointment went fine"), and other values of the same type are around (a
    sister's dentist, the electrician's fee). About a third of the time the detail sits in
    the assistant's reply to the user's request ("How about calling it Bread Pitt?"), so
    the turn that matches the question best is not the one that answers it.
``paraphrase``
    the question shares no content word with its evidence ("Which musical instrument have
    I been learning to play?" for "I finally started cello lessons"); checked by
    ``content_stems`` for every question made. Turns that do share the question's words
    are planted as decoys ("I love having music on while I cook").
``multihop``
    two turns from different sessions: one ties the question's words to a name ("my sister
    Lena adopted a rescue dog, she named him Pixel"), the other gives the detail with the
    name only ("Pixel turned out to be part kelpie"). The second shares no content word
    with the question, so it is found only through the first.
``when``
    "When did I ...?" about something done once; the answer is the date of the session it
    was said in, and the turn itself says only "today" or "this morning". The retriever
    must return the turn; the date comes from its page.
``first``
    a topic that comes back four to six times with new details (a kitchen renovation:
    quotes, tiles, delays); "What did I first say about ...?" has the first mention as its
    only evidence. Every mention shares the topic's words, so only order tells them apart.
``update``
    a value that changes two to four times (employer, neighbourhood, car, phone); "Where do
    I work now?" has the latest statement as its only evidence and the latest value as its
    answer. Again every statement matches the question as well as the last one does.

Evidence is spread over all sessions, the first two included. Deterministic for a given
seed (one ``random.Random``); standard library only. Rows are the benchmark's format
(``llmos bench paging`` reads the same from JSONL): ``{"id", "turns": [{"id", "speaker",
"text", "session", "date"}], "questions": [{"question", "evidence", "kind", "answer"}]}``,
plus ``mentions`` (every turn of the topic or value, in order) on ``first`` and
``update`` questions and ``topic`` on ``first`` ones. ``python -m llmos.bench.longmem N``
writes N conversations as JSONL.
"""

from __future__ import annotations

import json
import random
import re
import string
import sys
from datetime import date, timedelta
from typing import NamedTuple

KINDS = ("fact", "paraphrase", "multihop", "when", "first", "update")

# Function words; every other word of four letters or more counts as content.
STOPWORDS = frozenset("""
about above after again against also because been before being below between both could
didn does doesn doing down during each from further have haven having here hers herself
himself into isn itself just more most myself once only other ours over same should some
such than that their theirs them then there these they this those through under until very
wasn were weren what when where which while whom whose will with would your yours yourself
""".split())

ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def content_stems(text: str) -> set[str]:
    """Crude stems of a text's content words: words of four letters or more, not stopwords,
    cut to five letters ("dentist's" gives "denti"). Two texts share a word when their sets meet."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {w[:5] for w in words if len(w) >= 4 and w not in STOPWORDS}


# Values drawn without replacement within a conversation: no two slots share one, so every
# question has one right answer. Tuples keep numbers that must agree together.
POOLS = {
    "female": ["Lena", "Maya", "Priya", "Chloe", "Ingrid", "Aisha", "Rosa", "Nadia", "Freya", "Imogen",
               "Tamsin", "Beatrice", "Yara", "Sofia", "Harriet", "Mei", "Olwen", "Zara", "Esme", "Greta"],
    "male": ["Tom", "Arjun", "Felix", "Marcus", "Jonah", "Kwame", "Luca", "Owen", "Rafael", "Tobias",
             "Dev", "Callum", "Ezra", "Hugo", "Idris", "Joel", "Matteo", "Niall", "Oscar", "Yusuf"],
    "neutral": ["Sam", "Alex", "Robin", "Jamie", "Charlie", "Morgan", "Jordan", "Riley", "Kit", "Frankie",
                "Sasha", "Quinn", "Remy", "Toni"],
    "kid": ["Rosie", "Theo", "Ada", "Milo", "Iris", "Albie", "Nell", "Otto", "Wren", "Arlo"],
    "surname": ["Okafor", "Lindqvist", "Marchetti", "Haddad", "Novak", "Brennan", "Achterberg", "Oyelaran",
                "Castellano", "Whitcombe", "Desrosiers", "Fairbairn", "Quaye", "Halloran", "Szabo", "Rasmussen"],
    "street": ["Elm Street", "Larch Road", "Cooper Lane", "Mill Street", "Victoria Parade", "Quarry Hill",
               "Saltmarsh Lane", "Foundry Street", "Orchard Row", "Kiln Lane"],
    "city": ["Lisbon", "Valencia", "Krakow", "Tallinn", "Ghent", "Bologna", "Ljubljana", "Bergen", "Seville",
             "Edinburgh", "Dublin", "Glasgow", "Bristol", "Lyon", "Leipzig", "Utrecht"],
    "place": ["Hanoi", "Oaxaca", "Tbilisi", "Hokkaido", "Patagonia", "Sri Lanka", "Zanzibar", "the Azores"],
    "code": ["4471", "2093", "8316", "5528", "7704", "3189", "6642", "9051"],
    "flight": ["BA 2471", "EZY 8310", "FR 6623", "KL 1094", "TP 1357", "LH 2286", "VY 7745", "SK 1530"],
    "restaurant": ["The Copper Pot", "Little Ember", "Saffron and Salt", "Mama Ngozi's", "Kettle Yard",
                   "The Blue Door", "Olive Alley", "Nine Lanterns"],
    "cuisine": ["Georgian", "Ethiopian", "Peruvian", "Sri Lankan", "Lebanese", "Korean", "Vietnamese", "Basque"],
    "gift": ["telescope", "karaoke machine", "pair of roller skates", "squid-shaped kite", "chemistry set",
             "robot-building kit"],
    "starter": ["Clint Yeastwood", "Bread Pitt", "Doughlene", "Sir Loafalot", "Bubbles McGee", "Yeastie Boy"],
    "title": ["The Salt Orchard", "Winter at Halvard", "A Map of Quiet Rivers", "The Glass Cartographer",
              "Lanterns Over Kessel", "The Ninth Tide", "A Year of Borrowed Weather", "Moths in the Observatory",
              "North of Nowhere Station", "The Long Quiet"],
    "author": ["Tamar Threlkeld", "Mirin Osei", "Jorund Ekwall", "Petra Lomax", "Cass Vane", "Hollis Marr"],
    "wine": ["Rioja Reserva", "Chianti Classico", "Malbec from Mendoza", "Cotes du Rhone", "Douro red",
             "Pinot Noir from Otago"],
    "password": ["amber-otter-42", "quiet-harbour-17", "north-fern-88", "blue-kettle-31", "salt-moth-64",
                 "paper-lynx-09"],
    "quote": [(180, 20, 216), (200, 20, 240), (250, 10, 275), (320, 25, 400), (150, 20, 180), (400, 15, 460),
              (120, 25, 150), (260, 5, 273)],  # base, tax percent, total
    "save": [(90, 1080, "twelve"), (110, 660, "six"), (130, 1040, "eight"), (160, 1440, "nine"),
             (220, 1320, "six"), (350, 2800, "eight"), (70, 840, "twelve"), (140, 1260, "nine")],
    "num": ["85", "95", "125", "135", "145", "165", "185", "195"],
    "pet": ["Biscuit", "Pixel", "Mango", "Turnip", "Waffles", "Pretzel", "Noodle", "Pickle", "Bramble", "Custard"],
    "breed": ["border collie", "kelpie", "corgi", "sheltie", "Australian shepherd"],
    "company": ["Vinterra", "Loopwell", "Tessarine", "Quillo", "Brambleworks", "Nimbl"],
    "product": ["scheduling software for vineyards", "robotic lawnmowers", "smart beehives",
                "apps for dog walkers", "subscription boxes of hot sauce"],
    "venue": ["an old watermill outside Bath", "a lighthouse in Cornwall", "a castle hotel in Fife",
              "a barn in the Cotswolds", "a boathouse on Windermere", "a converted chapel in Whitby"],
    "carname": ["Rusty", "Doris", "Nugget", "Gerald", "Bluebell", "Trevor", "Dolores", "Bertha"],
    "part": ["alternator", "clutch", "fuel pump", "radiator", "starter motor", "head gasket"],
    "activity": ["birdwatching", "fly fishing", "geocaching", "wild swimming", "metal detecting", "orienteering"],
    "ward": ["the maternity unit", "paediatrics", "the stroke unit", "intensive care", "the cardiac ward"],
    "colour": ["sage green", "navy", "terracotta", "butter yellow", "deep plum"],
    "language": ["Portuguese", "Japanese", "Italian", "Greek", "Turkish", "Dutch"],
    "thing": ["which board games I've lent to friends", "how much water I drink", "what's lurking in the freezer",
              "when my bike tyres need pumping"],
    "region": ["the Lake District", "Brittany", "the Scottish Highlands", "Snowdonia", "the Peak District"],
    "employer": ["Norvale Insurance", "Brightline Labs", "Halden and Price", "Corvid Analytics", "Meridian Foods",
                 "Kestrel Logistics", "Ashgrove Council", "Fennick Studio"],
    "hood": ["Eastbrook", "Millfield", "Harrow Green", "Port Ellery", "Kingsgate", "Ashcombe", "Larkhill"],
    "car": ["Volvo estate", "Fiat Panda", "Skoda Octavia", "Honda Jazz", "Ford Fiesta", "Toyota Yaris",
            "Renault Clio", "Kia Picanto"],
    "show": ["The Lighthouse Keepers", "Northbound", "Copper Street", "Midnight Allotment", "Paper Crowns",
             "The Ferryman's Daughter", "Static Bloom", "The Quiet Coast", "Hollow Valley", "Fast Rivers"],
    "phone": ["Pixel 6", "iPhone 11", "Galaxy S20", "Fairphone 4", "Moto G8", "OnePlus 9", "Nokia G21"],
    "diet": ["vegetarian", "vegan", "pescatarian"],
    "instrument": ["cello", "violin", "ukulele", "banjo", "trumpet", "harp", "double bass"],
    "med": ["amlodipine", "ramipril", "losartan", "lisinopril", "candesartan"],
    "allergen": ["shellfish", "sesame", "kiwi", "cashews", "mustard"],
    "petkind": ["cat", "rabbit", "greyhound", "guinea pig", "tortoise"],
    "age": ["eighty", "eighty-five", "ninety", "ninety-one", "ninety-six"],
    "mattress": ["memory foam", "firm hybrid", "pocket-sprung", "latex"],
    "month": ["May", "June", "July", "September", "October"],
    "pct": ["eight", "ten", "twelve", "fifteen"],
    "furniture": ["wardrobe", "bookcase", "bunk bed", "desk", "chest of drawers"],
    "app": ["Pennywise", "Coinjar", "Ledgerly", "Spendle", "Tallyho"],
    "craft": ["pottery", "watercolour", "woodworking", "life drawing", "stained glass"],
    "lostitem": ["umbrella", "headphones", "scarf", "gloves", "lunchbox"],
    "trail": ["Ridgeway", "coastal path", "Seven Sisters", "canal towpath"],
    "km": ["twelve", "fifteen", "eighteen", "twenty-two"],
    "waketime": ["half five", "quarter to six", "five fifteen", "ten to six"],
    "exam": ["accountancy", "project management", "bookkeeping", "paralegal"],
    "amount": ["twenty", "thirty", "forty", "fifty"],
    "motif": ["swallow", "lemon", "compass", "wave", "fern", "moth"],
    "drink": ["flat white", "oat latte", "cortado", "chai latte", "double espresso"],
    "years": ["seven", "nine", "twelve", "fifteen"],
    "nights": ["three", "four", "five", "ten"],
}
# Values that may repeat: small talk, never an answer.
FREE = {
    "n": ["three", "four", "five", "six", "seven"],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
    "dish": ["lentil soup", "vegetable curry", "mushroom risotto", "minestrone", "dal", "bean chilli", "pasta bake"],
    "digit": ["2", "3", "4", "5"],
}


class Fact(NamedTuple):
    said: str      # "user | assistant": the exchange that holds the answer
    question: str  # phrasings, " | " between them
    answer: str
    noise: str     # exchanges on the same topic without the answer, one a line
    side: str = "user"  # the turn of `said` that holds the answer


class Hop(NamedTuple):
    link: str    # ties the question's words to a name
    detail: str  # the asked detail, with the name and none of the question's words
    question: str
    answer: str


class Event(NamedTuple):
    said: str
    question: str
    noise: str


class Topic(NamedTuple):
    key: str    # the words every mention shares
    first: str
    later: str  # further mentions, in story order
    question: str
    answer: str


class Value(NamedTuple):
    pool: str
    opening: str  # states the first value as {new}
    changes: str  # each states {new} in place of {old}
    question: str


FACTS = [
    Fact("By the way, my dentist is Dr. {surname} over on {street}, writing it down before I forget. | Good idea "
         "to keep that handy. Are you due for a checkup soon, or is something bothering you?",
         "What's my dentist's name? | What was my dentist called again?", "Dr. {surname}", """
Dentist appointment went fine, no cavities this time, just the usual lecture about flossing. | No cavities is a win! The flossing lecture seems to come with every visit to the dentist.
I need to reschedule the dentist, a client meeting landed right on top of the appointment. | Most dental practices are flexible if you call a day or two ahead. Want a reminder to ring them?
My sister swears by her dentist, a Dr. {surname2}, but the practice is an hour's drive away. | An hour each way is a lot for a cleaning. Still, a dentist you trust is worth something."""),
    Fact("The plumber quoted {quote[0]} pounds plus {quote[1]} percent tax to fix the leak under the sink. What's "
         "the total? | With the tax that comes to {quote[2]} pounds all in, which sounds fair for a leak repair.",
         "What did you work out the plumber's total to be? | How much did you say the plumber's bill comes to?",
         "{quote[2]} pounds", """
The plumber is coming back on {weekday} to check the pipes again. | Good that they're following up. Make sure someone is home to let the plumber in.
Should I get a second plumber to look at it before I pay anything? | A second opinion rarely hurts, especially for bigger jobs. It also gives you a price to compare.
The electrician charged {num} pounds just to look at the fuse box, unbelievable. | Call-out fees can be steep. Did he at least find what was tripping it?""", side="assistant"),
    Fact("My gym locker code is {code}, I'm writing it here because I keep blanking on it. | Noted. Maybe save it "
         "in your phone as well, just in case your mind goes blank at the gym again.",
         "What's the code for my gym locker? | What's my gym locker code?", "{code}", """
The gym was packed tonight, I couldn't even get a locker near the showers. | Evenings are peak time. Early mornings or late nights tend to be much quieter.
Thinking of switching gyms, the locker rooms at mine are grim and they just raised the fee. | Worth comparing. Some gyms do cheaper off-peak memberships if your schedule allows.
Left my towel in the gym locker again, it's going to smell terrible by tomorrow. | Ha, classic. Maybe keep a spare towel in your bag for those days.
Someone at the gym had their locker broken into, so now I'm a bit paranoid. | That's unsettling. Leaving valuables at home on gym days is the safest bet."""),
    Fact("Our new neighbour introduced herself today, her name is {female}, she works nights as a nurse. | That was "
         "kind of her to come over. Nurses on nights keep odd hours, so quiet mornings might be appreciated.",
         "What's my new neighbour called? | What's the name of my new neighbour?", "{female}", """
The neighbours downstairs are having another loud party, and it's nearly midnight. | That's frustrating on a weeknight. If it keeps happening, a friendly note might work better than knocking.
My neighbour's cat keeps sleeping on the bonnet of my car, there are paw prints everywhere. | A warm bonnet is irresistible to cats. A cheap car cover might save your paintwork.
Should I bring the new neighbour some biscuits, or is that old-fashioned now? | It's a kind gesture and most people appreciate it. Homemade or shop-bought both work.
{female2} from across the road has lived here thirty years and knows everyone's business. | Every street needs a neighbour like that. She's probably a great source of local tips, too."""),
    Fact("My flight to {city} is {flight}, leaving from terminal {digit} at seven in the morning. | An early one. It "
         "might be worth booking a taxi the night before so you're not stressed.",
         "What's my flight number for the {city} trip? | Which flight am I taking to {city}?", "{flight}", """
I still need to pack for {city} and I haven't even found my plug adapter. | Start with the things you can't buy there, like the adapter and any medication. The rest is easy.
Flights to {city2} dropped by half this week, so tempting. | That's a big drop. If your dates are flexible it could be a great excuse for another trip.
Any tips for sleeping on a flight? I never manage more than an hour. | A neck pillow, an eye mask and skipping coffee beforehand help a lot. A window seat makes it easier too."""),
    Fact("We had dinner at {restaurant}, that little {cuisine} place on {street}, and I'm still thinking about it. | "
         "That sounds like a great find. Did you have a favourite dish?",
         "What was the name of the {cuisine} place we loved? | Which {cuisine} restaurant did we have dinner at?",
         "{restaurant}", """
I want to find a good {cuisine} place for Friday, somewhere not too loud. | Booking a table early in the evening usually helps with the noise. Do you want somewhere central?
That {cuisine2} restaurant near the station closed down, which is a real shame. | That's a pity. Restaurants have had a tough few years, especially the small independent ones.
Cooked {cuisine} food at home tonight and it was nowhere near restaurant quality. | Home versions rarely match at first, but practice helps a lot. Which dish did you try?"""),
    Fact("My new manager is called {female} {surname}, she seems sharp and actually reads her emails. | A manager "
         "who reads emails is a good start. First impressions count for a lot.",
         "What's my new manager's name? | Who is my new manager?", "{female} {surname}", """
My manager wants the quarterly report by Friday, which is a bit ambitious. | Tight, but doable if you block out some focused time. Can any part of last quarter's report be reused?
Had my first one-to-one with the new manager, mostly about goals for the year. | Goal-setting meetings are useful. Did anything come out of it that you want to work on?
My manager's boss sat in on our team meeting and nobody said a word. | That always changes the room. Hopefully it was just a routine visit."""),
    Fact("For my niece {female}'s birthday I ordered her a {gift}, she's going to go wild. | She'll love that. It's "
         "always fun giving a present you know will land.",
         "What did I order for my niece's birthday? | What present did I get my niece?", "{gift}", """
My niece's birthday party is at a trampoline park, and I'm already dreading the noise. | Trampoline parks are loud but kids love them. Bring earplugs and a big coffee.
Any present ideas for my niece? She's ten and completely obsessed with space. | Star projectors, a kids' astronomy book or a glow-in-the-dark planet set are usually big hits.
My niece beat me at chess again, she's getting scarily good. | That's impressive for her age. Maybe she'd enjoy a junior chess club."""),
    Fact("My sourdough starter needs a name, it feels rude to keep calling it the jar. | How about {starter}? It "
         "sounds like something that would bubble over when you're not looking.",
         "What name did you suggest for my sourdough starter? | What did you say I should call my sourdough starter?",
         "{starter}", """
My sourdough starter smells a bit like nail polish, is that normal? | That acetone smell usually means the starter is hungry. Feed it more often and it should settle down.
Fed the sourdough starter twice today and it finally doubled in the jar. | Doubling is exactly what you want. It sounds ready to bake with.
My sourdough loaf came out flat as a pancake again. | Flat loaves often mean under-proofing or a sluggish starter. Try a longer rise in a warmer spot.""",
         side="assistant"),
    Fact("Can you recommend a science fiction novel for the train? Nothing too bleak, please. | Try {title} by "
         "{author}, it's clever and warm, and the short chapters suit a journey.",
         "Which science fiction novel did you recommend to me? | What sci-fi book did you suggest I read?", "{title}", """
I never finish science fiction books, I get lost in all the made-up words. | Some science fiction leans heavily on jargon. Character-driven stories tend to be easier to get into.
Our office book swap is all crime novels and one lonely science fiction paperback. | Maybe that lonely paperback is a sign! Swaps are a nice way to try something new.
Do you think reading on a tablet is as good as reading a paper book? | It depends on you. Some people absorb more on paper, but tablets win for travel and night reading.""",
         side="assistant"),
    Fact("If I put aside {save[0]} pounds a month, how long until I have {save[1]} for the new laptop? | At that "
         "rate you'd reach it in {save[2]} months, sooner if you add any birthday money or a bonus.",
         "How many months did you say it would take me to save for the laptop? | How long did you reckon saving "
         "up for the new laptop would take?", "{save[2]} months", """
My laptop takes ten minutes to start up now, it's honestly embarrassing in meetings. | That's painful. Clearing the startup programs can help until you replace it.
Is it better to buy a laptop in the sales or wait for the new models? | Last year's model on sale is usually the best value, unless you need a specific new feature.
Trying to save money this month, so it's packed lunches every single day. | Packed lunches add up fast. Even a few a week make a noticeable difference to your savings.""",
         side="assistant"),
    Fact("Dinner at my in-laws on Saturday, what wine should I bring to go with roast lamb? | A {wine} would be "
         "lovely with lamb, it has enough body without being heavy.",
         "Which wine did you suggest for dinner with my in-laws? | What wine did you recommend for the in-laws?",
         "{wine}", """
My in-laws are visiting again this weekend and I haven't even hoovered. | A quick tidy of the main rooms is all anyone notices. Don't stress too much about the in-laws.
I don't really know anything about wine, I just pick whichever label looks nicest. | Honestly, that works more often than you'd think. Most shops have good staff picks too.
My father-in-law keeps sending me long articles about pensions. | That's probably his way of caring. Maybe skim one so you can say something nice about it.""",
         side="assistant"),
    Fact("The wifi password at my parents' house is {password}, saving it here for the next visit. | Handy to have. "
         "Now you won't have to dig through old messages next time you're there.",
         "What's the wifi password at my parents' house? | How do I log on to the wifi at my parents' place?",
         "{password}", """
The wifi at my parents' place is so slow that videos won't even load. | Older routers struggle with modern use. A cheap mesh extender might help them a lot.
My parents still call the wifi router 'the internet box' and unplug it at night. | That's very sweet, if a little inconvenient. At least it saves electricity.
Changed our home wifi password and now I can't remember it myself. | That happens! Writing it on a card inside a cupboard is an old but effective trick."""),
]

PARAPHRASES = [
    Fact("I finally started {instrument} lessons, Tuesdays after work, and my fingers already hurt. | Sore "
         "fingertips are normal at the start, they toughen up within a few weeks.",
         "Which musical instrument have I been learning to play?", "{instrument}", """
I love having music on while I cook, it makes the whole thing less of a chore. | Music really helps. Do you have a go-to playlist for cooking?
My nephew wants to learn an instrument and his parents are dreading the noise. | Maybe steer him towards a keyboard with headphones, for everyone's sake."""),
    Fact("My doctor put me on {med} for my blood pressure, one tablet every morning with breakfast. | Taking it at "
         "the same time each day makes it easier to remember. I hope it helps.",
         "What medication was I prescribed for hypertension?", "{med}", """
Do you know if I can take ibuprofen with other medication? | It depends on the medication. A pharmacist can check quickly and it costs nothing to ask.
My aunt was prescribed something for her joints and it made her dizzy. | Side effects like that are worth reporting to her doctor, there are usually alternatives."""),
    Fact("Found out the hard way at a wedding that I'm allergic to {allergen}, never again. | That sounds scary. "
         "It's worth carrying antihistamines and checking menus carefully.",
         "What can't I eat without getting sick?", "{allergen}", """
I ate far too much at dinner and now I feel a bit sick. | Overeating happens to everyone. Peppermint tea and a short walk might settle your stomach.
Getting sick of eating the same sandwich for lunch every day. | A rotating menu of three or four lunches can keep things interesting without much effort."""),
    Fact("We brought home a {petkind} from the shelter, she's called {pet} and she hides from the hoover. | "
         "Shelter animals often need time to trust a new home. She'll settle in.",
         "What kind of animal did I adopt?", "a {petkind}", """
Adopting from a shelter seems lovely, but the paperwork is endless. | It can be a lot, but shelters want to make sure every match works out.
What kind of animal is easiest for a first-time owner? | It depends on your lifestyle, but cats and small pets like rabbits are often good starters."""),
    Fact("Switched to decaf after lunch, I was lying awake until two every night. | That's a sensible change. "
         "Caffeine can linger for hours, so it often helps a lot.",
         "Why did I stop drinking regular coffee late in the day?", "it kept me awake at night", """
I drink way too much coffee at work, I'm on my fourth cup by noon. | That's a lot of caffeine. Maybe swap one for water or herbal tea and see how you feel.
Regular exercise apparently helps with stress, I should stop ignoring that advice. | It really does. Even a short daily walk counts as exercise."""),
    Fact("My grandmother turns {age} next Sunday, we're taking her for lunch at her favourite cafe. | That's "
         "lovely. Lunch somewhere she loves sounds like the perfect way to celebrate.",
         "What birthday milestone is my nan reaching?", "{age}", """
My birthday is coming up and I want zero fuss this year. | A quiet birthday can be lovely. Maybe just a nice meal with one or two people?
{pal} is reaching a big birthday milestone soon and wants a big party. | Milestone birthdays deserve a celebration. Is {pal} planning it or hoping someone else will?"""),
    Fact("I've been sleeping so badly that I bought a {mattress} mattress, it arrives on Friday. | A good mattress "
         "can change everything. Give your body a couple of weeks to adjust.",
         "What did I purchase to help with my insomnia?", "a {mattress} mattress", """
Can you help me with my insomnia? I've tried everything except giving up screens. | Giving up screens an hour before bed really can help. A consistent wake time matters too.
Insomnia runs in my family, my mum is up at four every day. | Early waking can run in families. Bright light in the evening sometimes shifts it a little."""),
    Fact("My brother {brother} is getting married in {month}, and I've been asked to give a speech. | What an "
         "honour! Start collecting funny stories now, it makes writing the speech easier.",
         "Which sibling has a wedding coming up?", "my brother {brother}", """
Wedding season is here and I've got four invitations already. | Four weddings is a lot! Your calendar and your wallet will both feel that.
My sibling group chat is just memes and arguments about who hosts Christmas. | Sibling chats are chaos. A hosting rota could save a lot of arguing."""),
    Fact("My keys slipped through a drain grate outside the station, I had to call a locksmith. | What a "
         "nightmare! Maybe get a spare set cut and leave one with someone nearby.",
         "How did I get locked out of my home?", "my keys fell down a drain", """
I left my home insurance renewal until the last day again. | Setting a calendar reminder a month ahead can save you from rushed renewals.
Got locked out of my work account for typing the password wrong three times. | That's annoying. A password manager can save you from lockouts like that."""),
    Fact("Our landlord is putting the rent up by {pct} percent from {month}, I'm livid. | That's a big jump. Check "
         "your tenancy agreement, there may be rules on notice.",
         "How much more will my housing cost?", "{pct} percent more", """
Housing round here is absurd, a studio costs more than my parents' mortgage. | Housing costs have gone wild in a lot of places. It's a real squeeze for everyone.
The cost of the weekly shop keeps creeping up. | Prices have risen a lot. Own-brand products and a shopping list can help keep it down."""),
    Fact("Spent all Saturday assembling a {furniture}, and of course the instructions were missing a page. | "
         "Flat-pack with missing instructions is a special kind of torture. Did it end up sturdy?",
         "What furniture did I put together at the weekend?", "a {furniture}", """
Our furniture is a mix of hand-me-downs and things we found on the street. | That's how most homes start. Mismatched furniture can be charming.
This weekend I mostly slept and ate cereal, no regrets at all. | Sounds like a proper rest. Those weekends are needed sometimes."""),
    Fact("I've been using {app} to track everything I spend, seeing the takeaway total is brutal. | Seeing it in "
         "black and white is eye-opening. Even small changes add up quickly.",
         "Which budgeting tool am I trying out?", "{app}", """
I really need to make a budget, money just vanishes every month. | A simple budget with three or four categories is a good place to start.
Is there a tool for organising recipes that isn't full of adverts? | There are a few recipe managers, and a plain notes app works surprisingly well too."""),
    Fact("My eyesight has been getting worse and the optician says I need reading glasses now. | Welcome to the "
         "club! Pick a pair you really like, it makes wearing them easier.",
         "What did the eye doctor tell me?", "I need reading glasses", """
The doctor's waiting room was packed this morning, I waited over an hour. | Long waits are so frustrating. Early appointments tend to run closer to time.
Can you tell me if it's normal for an eyelid to twitch for days? | Eyelid twitches are usually harmless and linked to tiredness, stress or caffeine."""),
    Fact("Signed up for a {craft} class on Thursday evenings, the first one is next week. | That sounds like a "
         "lovely way to unwind midweek. Enjoy it!",
         "What creative hobby did I enrol in?", "{craft}", """
I need a hobby that doesn't involve staring at a screen. | Something hands-on like baking, knitting or jigsaw puzzles can be very absorbing.
{pal} is so creative, the kind of person who makes their own clothes. | That's a great skill. Maybe {pal} could teach you a few basics?"""),
    Fact("Left my {lostitem} on the bus this morning and of course nobody handed it in. | That's so annoying. It "
         "might still turn up at the depot's lost property in a few days.",
         "What did I misplace on public transport?", "my {lostitem}", """
Public transport was a mess today, two cancelled trains in a row. | That's maddening. Hopefully tomorrow's journey is smoother and you get a seat.
I misplace my water bottle about five times a day. | A brightly coloured bottle or a fixed spot by the door might save you some searching."""),
    Fact("I'm halfway through {title} and I can't put it down, I read until one last night. | That's the best "
         "kind of book. Who's your favourite character so far?",
         "Which novel has me hooked at the moment?", "{title}", """
I want to write a novel one day, but I can't get past the first page. | Many writers start with short scenes instead of page one. Try writing the middle first.
I'm completely hooked on crossword puzzles lately, I do three a day. | Crosswords are a great habit for the brain. Cryptic ones next?"""),
    Fact("My sister {sister} had twins yesterday, a boy and a girl, and everyone is doing well! | Congratulations, "
         "that's wonderful news! Double the nappies, but double the cuddles too.",
         "Who in my family became a parent recently?", "my sister {sister}", """
My parents are finally learning to use group video calls. | That's a big step! Patience and a written cheat sheet can help a lot.
My family is terrible at planning anything, we only decided on Christmas plans last week. | Last-minute family plans are very common. At least it got sorted in the end."""),
    Fact("Did the {trail} walk on Sunday, {km} kilometres, and my legs are jelly today. | That's a proper "
         "distance! A warm bath and some stretching will help your legs recover.",
         "How far did I hike at the weekend?", "{km} kilometres", """
Any tips for a first proper hike? I only own trainers. | Trainers are fine for well-kept trails. Bring layers, water and snacks, and check the forecast.
This weekend is packed, three birthdays and a christening. | That's a full weekend! Make sure you leave a little time to recharge."""),
    Fact("I've started waking up at {waketime} to squeeze a workout in before everyone else is up. | That's "
         "dedication. Early workouts can set a great tone for the rest of the day.",
         "What hour does my alarm go off these days?", "{waketime}", """
A car alarm went off at two in the morning and kept going for an hour. | That's awful. Broken sleep like that makes the next day so hard.
These days I spend more hours on video calls than with actual people. | That's very common now. Try to fit in at least one in-person catch-up a week."""),
    Fact("Got my results back, I passed the {exam} exam on the first attempt! | Congratulations! All that studying "
         "paid off, you should be really proud.",
         "How did my professional qualification test go?", "I passed first time", """
Do you think a professional certificate is worth it in my field? | It can be, especially if employers ask for it. Look at job ads to see how often it comes up.
The fire alarm test at work went off right in the middle of my presentation. | Terrible timing! At least everyone will remember your presentation for a long while."""),
    Fact("I've signed up to volunteer at the food bank on Saturday mornings, starting next week. | That's a "
         "really kind thing to do. Food banks always need reliable volunteers.",
         "Where do I help out on my days off?", "the food bank", """
Can you help me write a card for a colleague who's leaving? | Of course. Something short about what you'll miss about working with them is perfect.
On my days off I never know what to do with myself. | Having one small plan, like a walk or a cafe visit, can give the day some shape."""),
    Fact("The GP rang, my cholesterol came back high, so it's porridge and long walks from now on. | That's a "
         "practical plan. Small changes in diet and activity really do move those numbers.",
         "What did my blood test show?", "high cholesterol", """
Blood tests make me faint, I have to lie down every single time. | That's more common than people think. Tell the nurse beforehand so they can lie you down from the start.
Does a fasting test mean no coffee either? | Usually yes, only water. It's worth checking the instructions you were given."""),
    Fact("Accidentally shrank my favourite wool jumper in the wash, it would fit a child now. | Oh no! Sometimes "
         "soaking it in conditioner and gently stretching it can rescue wool.",
         "What happened to my best sweater in the laundry?", "it shrank", """
I do laundry every Sunday and somehow still run out of socks. | The sock mystery is universal. Buying identical pairs makes matching much easier.
Is it okay to wear a sweater to an evening wedding? It gets chilly. | A light knit over your shoulders for the evening is perfectly fine."""),
    Fact("My parents are coming to stay for {nights} nights over Easter, I need to clear the spare room. | That'll "
         "be lovely. A tidy spare room and fresh towels go a long way.",
         "How long will mum and dad visit?", "{nights} nights", """
It's been so long since I visited my hometown, I barely recognised it. | Places change fast. Was it nice to see, or a bit strange?
How long should a house guest stay before it gets awkward? | Three nights is the classic answer, but it really depends on the guest!"""),
    Fact("Got caught doing forty in a thirty zone on the ring road, that's a hundred pounds and three points. | "
         "Ouch. It's an expensive reminder, but at least it's nothing worse.",
         "What fine did I receive from the police?", "a hundred pounds and three points", """
The police closed our road for hours yesterday and nobody knows why. | That's unsettling. Local news or a community group might have details.
I'm still waiting to receive my refund from the airline. | Airlines can be painfully slow. Keep records of all your emails in case you need to escalate."""),
    Fact("I sponsored {pal} {amount} pounds for a charity swim across the lake. | That's generous! Open-water swims "
         "are tough, I hope it goes well.",
         "How much money did I give to my friend's fundraiser?", "{amount} pounds", """
My friend still owes me money from the concert tickets. | Awkward. A light reminder with the amount usually sorts it out without drama.
Should I give money to every fundraiser at work? It adds up. | It's fine to pick a few causes you care about and politely skip the rest."""),
    Fact("Finally got the tattoo I've been planning for years, a small {motif} on my wrist. | That's exciting after "
         "waiting so long! Keep it moisturised while it heals.",
         "What design did I have inked on my arm?", "a small {motif}", """
My colleague has a design degree and critiques every poster in the office. | Ha, that must make the office noticeboard a tense place.
Which design looks better on a birthday invite, bold or simple? | Simple designs usually read better at a glance, especially on small cards."""),
    Fact("My usual at the cafe on the corner is a {drink}, the barista starts making it when I walk in. | That's "
         "the mark of a true regular! It's nice when a place knows you.",
         "What do I always order from the coffee shop?", "{drink}", """
The coffee shop near work has started charging extra for oat milk. | Those extras add up. Some places do loyalty cards that soften the blow.
I always forget to order the birthday cake until the last minute. | A calendar reminder a week before birthdays might save you next time."""),
    Fact("{partner} and I will have been together {years} years this autumn, where did the time go? | That's "
         "lovely. Are you planning anything special to mark it?",
         "How long is my relationship?", "{years} years", """
Long-distance relationships must be so hard, I don't know how people manage. | They take a lot of trust and planning, but plenty of couples make them work.
How long should cooked rice sit out before it goes in the fridge? | Cool it quickly and refrigerate within an hour or so, then reheat until piping hot."""),
    Fact("I've given up alcohol for {month}, the pub quiz is a lot less fun sober. | Good for you. It might "
         "surprise you how much better you sleep by the end of it.",
         "Which drink have I quit for a while?", "alcohol", """
Need a drink after today, honestly, what a shambles. | Sounds like a rough one. Do you want to talk about what happened?
I quit the choir last month, I just couldn't make rehearsals any more. | That's understandable. Maybe you can rejoin when life calms down."""),
]

HOPS = [
    Hop("My sister {sister} adopted a rescue dog last week, she named him {pet}. | That's lovely! Rescue dogs are "
        "often so grateful for a home. How is he settling in?",
        "{pet} turned out to be part {breed}, according to the vet, which explains the herding. | That would "
        "explain a lot! Those dogs need plenty of exercise and a job to do.",
        "What breed is my sister's dog?", "{breed}"),
    Hop("My old college roommate {neutral} just started at a startup called {company}. | Exciting! Startups can "
        "be a wild ride. Do you know what they'll be doing there?",
        "{company} apparently builds {product}, of all things. They're hiring, too. | That's niche, but niche "
        "companies often do well. Are you tempted to apply?",
        "What does my old college roommate's employer make?", "{product}"),
    Hop("My team lead is {female}, she moved over from the sales side last month. | A new lead can shake things "
        "up. Is she easy to work with so far?",
        "{female} signed up for the {city} marathon next spring, she's already running every morning. | That's a "
        "big commitment. Training for a marathon takes months of discipline.",
        "In which city will my team lead compete?", "{city}"),
    Hop("Our upstairs neighbour has a teenage son, {male}, who practises the drums every evening. | Drums "
        "through the ceiling every evening would test anyone. Have you talked to them?",
        "{male} got a place at a music conservatory in {city}, so the drumming ends in September! | Good for "
        "him, and good for your ceiling. A happy outcome for everyone.",
        "Where is my upstairs neighbour's son going to study?", "{city}"),
    Hop("My mother joined a book club that her friend {female} runs from her living room. | That sounds cosy. "
        "Book clubs are a great way to stay social. Is she enjoying it?",
        "{female} picked {title} for June, so Mum has been buying copies for half the group. | That's generous "
        "of her! Hopefully it's a good pick and sparks a lively discussion.",
        "Which book is my mother's book club reading?", "{title}"),
    Hop("My cousin {female} got engaged to her boyfriend {male} over New Year! | Congratulations to them! "
        "That's such a romantic time for it. Have they set a date?",
        "{male}'s family have booked {venue} for the big day, very fancy. | That sounds beautiful. It'll make "
        "for amazing photos, whatever the weather does.",
        "Where is my cousin getting married?", "{venue}"),
    Hop("My brother {brother} finally bought his first car, an old hatchback he's named {carname}. | A first car "
        "is a big milestone! Naming it is a good sign he'll look after it.",
        "{carname} broke down on the motorway already, the {part} gave out after two weeks. | Oh no, that's bad "
        "luck so early. Hopefully some kind of warranty covers it.",
        "Which part failed on my brother's car?", "{part}"),
    Hop("My friend {female} is expecting her first baby in the spring, she's over the moon. | That's wonderful "
        "news! Spring is a lovely time for it. Is she planning a baby shower?",
        "{female} sent photos this morning, little {kid} arrived on Tuesday with a full head of hair. | "
        "Congratulations to them! A full head of hair at birth is always such a surprise.",
        "What's the name of my friend's baby?", "{kid}"),
    Hop("My coworker {male} is taking three weeks off for a big trip, he's been saving for years. | Three weeks "
        "is a proper break. He must be so excited. Do you know where he's heading?",
        "{male} sent a postcard from {place}, apparently the food is incredible and it rains constantly. | A "
        "postcard is a lovely touch these days. Great food makes up for a lot of rain.",
        "Where did my coworker go on his trip?", "{place}"),
    Hop("My father made a new friend at the allotments, a retired teacher called {male}. | That's lovely, "
        "allotment friendships are a real thing. Do they grow things together?",
        "{male} has got him hooked on {activity}, they're out every Saturday at dawn. | Dawn starts take "
        "dedication! It's great that he's found something that gets him outdoors.",
        "What activity has my father taken up?", "{activity}"),
    Hop("My partner {partner} just started a new job at the hospital in town, it's a big change. | That is a big "
        "change! Hospital work can be demanding but rewarding. How are they finding it?",
        "{partner} is on nights in {ward} all this month, so we barely see each other. | Night shifts are hard "
        "on everyone at home. Try to protect the time you do get together.",
        "Which department does my partner work in at the hospital?", "{ward}"),
]

EVENTS = [
    Event("Finally got the car serviced this morning, they replaced the brake pads while they were at it. | Good "
          "to have that done, especially the brakes. It should feel smoother now.",
          "When did I get the car serviced?", """
How often should a car be serviced, roughly? I've lost the little booklet. | Usually once a year or every ten thousand miles or so. The manufacturer's website will have the schedule.
The car makes a weird squeak when it's cold out, it's driving me mad. | Cold squeaks are often belts or brakes. Worth mentioning to a mechanic if it keeps going."""),
    Event("Sent off my passport renewal form today, fingers crossed it doesn't take months. | Fingers crossed! "
          "Most renewals are quicker than people expect, as long as the photo is accepted.",
          "When did I send off my passport renewal?", """
My passport photo is truly awful, I look like I've seen a ghost. | Everyone's passport photo is awful, it's practically a rule. Only border staff ever see it.
Do you need a passport to fly within the country? | Usually not, a driving licence or other photo ID is enough for domestic flights, but check with the airline."""),
    Event("Got a haircut this afternoon and went much shorter than usual, still getting used to it. | A big "
          "change can take a few days to feel normal. Shorter styles are so easy to manage.",
          "When did I get a haircut?", """
My barber is moving to a new shop across town, which is annoying. | That's a pain. Loyal customers often follow, but it might be a chance to try someone closer.
Is it normal to tip for a haircut? I never know what to do. | It's common but not required. Rounding up is a nice gesture if you're happy with the cut."""),
    Event("Gave blood for the first time today, the nurse said my iron levels were great. | Well done! Make sure "
          "you eat something and take it easy for the rest of the day.",
          "When did I donate blood?", """
The blood donation van is parked outside the office again. | That's handy. Mobile units make it much easier to fit donating into a workday.
Can you give blood if you've had a cold recently? | Usually you should wait until you've fully recovered. The blood service can confirm the exact rules."""),
    Event("The piano tuner came round this morning, the old upright finally sounds like a piano again. | Lovely! "
          "A freshly tuned piano makes playing so much more enjoyable.",
          "When did I have the piano tuned?", """
My piano is so out of tune that even the neighbours have started complaining. | That's a clear sign. Most pianos need tuning once or twice a year.
Moving a piano up three flights of stairs should be an Olympic sport. | It really should! Professional piano movers earn every penny they charge."""),
    Event("Picked up my new bike from the shop today, a dark green commuter with a little basket. | That sounds "
          "lovely. Cycling to work is a great way to wake up in the morning.",
          "When did I pick up my new bike?", """
The bike lanes in this city just stop randomly, it's terrifying. | Disjointed lanes are a real problem. Quieter side streets can be safer, even if slower.
Should I get a heavy bike lock or a lighter one I'll actually carry? | A lock you actually use beats a heavy one left at home. A good D-lock is a decent middle ground."""),
    Event("Repotted all my houseplants this afternoon, the monstera was completely root-bound. | Root-bound "
          "plants perk up quickly after repotting. Give them a few days to settle.",
          "When did I repot my houseplants?", """
One of my houseplants has yellow leaves, any idea why? | Yellow leaves often mean overwatering. Let the soil dry out a bit between waterings.
Houseplants are weirdly cheaper at the supermarket than at the plant nursery. | Supermarket plants can be great value, they just sometimes need a bit of recovery time."""),
    Event("Got my flu jab at the pharmacy this morning, my arm is already a bit sore. | A sore arm is normal and "
          "should pass in a day or two. Good on you for getting it done.",
          "When did I get my flu jab?", """
Half the office is off with flu right now, it's like a ghost town. | That's rough. Lots of hand washing and fresh air might help you avoid it.
Is it too late in the winter to get a flu jab? | It's usually still worth getting while flu is going around. A pharmacist can advise on timing."""),
    Event("Took the old sofa to the recycling centre today, the living room looks enormous now. | It's amazing "
          "how much space an old sofa takes up. Are you getting a new one?",
          "When did I get rid of the old sofa?", """
Do charity shops take sofas, or is that a pain? | Many do if the fire safety label is still attached. Some even collect for free.
My friend is selling a sofa, but it's bright orange velvet. | Bold! Orange velvet could be a great statement piece in the right room."""),
    Event("Posted a birthday card to my grandmother today, with a photo of the cherry tree tucked inside. | She'll "
          "love that, especially the photo. Handwritten post means a lot.",
          "When did I send my grandmother a card?", """
My grandmother is learning to video call, she mostly shows me her ceiling. | That's adorable. Give her time, she'll get the angles eventually.
My grandmother's plum cake is the best thing I've ever eaten. | Family recipes are treasures. Have you ever tried making it yourself?"""),
    Event("Deep-cleaned the oven this morning, two hours of scrubbing and it looks brand new. | That's a "
          "satisfying job once it's done. Your next roast will thank you.",
          "When did I clean the oven?", """
The oven light has died, can I change the bulb myself? | Usually yes, with the oven off and cool. You'll need a heat-resistant oven bulb, not a standard one.
Is it cheaper to use the air fryer than the oven? | For small portions, usually yes, because it heats a much smaller space."""),
]

TOPICS = [
    Topic("kitchen", "We're thinking of redoing the kitchen this year, maybe {colour} cabinets and open shelving. | "
          "A kitchen refresh is exciting. Have you set a rough budget yet?", """
Got three quotes for the kitchen renovation and they're wildly different. | That's common. Compare what each includes, the cheapest often leaves things out.
The kitchen contractor can start in two weeks, so we're clearing everything out. | Two weeks is quick. Set up a little temporary station with a kettle and microwave somewhere.
Picked the tiles for the kitchen, plain white with dark grout so it hides the mess. | Practical and classic. Dark grout really does save a lot of scrubbing.
Change of plan on the kitchen, we're going with natural oak instead of painted cabinets. | Oak is warm and ages nicely. It'll be a very different feel.
The kitchen renovation is delayed, the worktop is stuck at the supplier. | Supplier delays are so frustrating. Did they give you a new date?
Living on takeaways while the kitchen drags on, my wallet is crying. | Renovations always take longer than planned. Maybe batch-cook at a friend's place one weekend?
The kitchen is finally done, just the lighting left to sort out. | Congratulations, that's a huge milestone. Lighting will be the finishing touch.""",
          "What did I first say about the kitchen renovation? | What was my original plan for the kitchen?",
          "{colour} cabinets and open shelving"),
    Topic("{language}", "I want to learn {language} before our trip next year, maybe ten minutes a day on an app. | "
          "Ten minutes a day is a great habit. Consistency matters more than long sessions.", """
My {language} app streak is at twenty days, I'm weirdly proud. | You should be! Streaks are a great motivator on the days you can't be bothered.
The {language} app feels too easy now, I'm thinking of finding a tutor. | A tutor can push you past the plateau. Even one session a week helps.
Had my first lesson with a {language} tutor online, my pronunciation is a disaster. | Everyone struggles with that at first. It improves fast with a real person listening.
I tried ordering in {language} at a restaurant and the waiter answered in English. | That happens a lot, don't let it discourage you. Keep replying in the language.
Started watching films in {language} with subtitles, I understand about a third. | A third is a good start! Your ear will adapt faster than you'd think.
Booked a week-long {language} immersion course for the summer. | That's a big step. Immersion can really speed everything up.""",
          "What was my original plan for learning {language}? | What did I first say about learning {language}?",
          "ten minutes a day on an app"),
    Topic("garden", "This spring I want to turn the back garden into a vegetable patch, mostly tomatoes and beans. | "
          "That's a lovely project. Homegrown veg tastes so much better.", """
The soil in the garden is basically clay, digging it is like breaking rocks. | Clay soil is hard work. Mixing in compost over time makes a big difference.
Slugs ate half my seedlings in the garden overnight, I'm furious. | Slugs are ruthless. Copper tape or beer traps can help protect the rest.
Garden update: I've built two raised beds out of old pallets. | Raised beds are perfect with heavy clay. Nice way to reuse pallets, too.
Giving up on part of the garden plan, the back corner gets no sun at all. | Shady corners are great for a bench or some ferns instead.
The garden is overflowing, I've got more courgettes than I know what to do with. | A classic problem! Courgette soup and fritters both freeze well.""",
          "What did I first say I wanted to do with the garden? | What was my original plan for the back garden?",
          "a vegetable patch, mostly tomatoes and beans"),
    Topic("side project", "I've got an idea for a side project, a little app that tracks {thing}. | That sounds "
          "useful. Are you planning to build it yourself?", """
Side project update: I have a login screen and nothing else. | Every project starts somewhere. Maybe pick one core feature to get working next.
Showed the side project to a friend and she actually wants to use it. | That's great validation! A real user is the best motivation.
Thinking of pausing the side project, work is eating all my evenings. | Pausing is fine. It'll still be there when you have more energy.
Picked the side project back up this weekend and fixed the worst bugs. | Nice, momentum is everything with projects like that. What's the next milestone?
Someone suggested I charge money for my side project, which feels ridiculous. | It's not ridiculous if people find it useful. Even a small price can cover hosting.""",
          "What was the side project idea I first mentioned? | What did I first say about my side project?",
          "an app that tracks {thing}"),
    Topic("holiday", "For the summer holiday I'm leaning towards camping in {region}, something cheap and "
          "outdoorsy. | Camping can be wonderful in summer. Do you have your own gear?", """
Holiday plans are shifting, {partner} isn't keen on camping after last time. | Fair enough, camping isn't for everyone. Maybe a cabin or cottage is a compromise?
Looking at cottages for the summer holiday now, they're all booked or enormous. | Summer books up early. Midweek stays or shoulder dates can open things up.
We might do a city break for the holiday instead, somewhere with good food. | A city break is a nice change. Food-focused trips are always memorable.
The summer holiday budget is already getting out of hand. | Setting a daily spending cap can keep it under control without ruining the fun.
The holiday is booked at last, a week in a little flat by the sea. | That sounds perfect. A week by the sea is hard to beat.""",
          "What was my original idea for the summer holiday? | What did I first say about the summer holiday?",
          "camping in {region}"),
    Topic("surprise party", "I want to throw a surprise party for {partner}'s fortieth, maybe at a bowling alley. | "
          "A surprise party is a lovely idea. Have you picked a date yet?", """
The surprise party guest list is already at forty people, help. | Forty is a lot to keep secret! A separate group chat will be essential.
The bowling alley was booked solid, so the surprise party might be at our place. | Home parties can be more relaxed anyway. You control the music and the food.
Ordered a cake for the surprise party, it's shaped like a vinyl record. | That's brilliant, it'll make a great centrepiece and a good talking point.
Someone nearly gave away the surprise party in the group chat, I almost died. | Close call! Maybe remind everyone to double-check which chat they're typing in.
The surprise party went perfectly, {partner} had no idea at all. | That's wonderful! All that planning and secrecy paid off in the end.""",
          "What was my first idea for the surprise party? | Where did I originally want to hold the surprise party?",
          "a bowling alley"),
]

VALUES = [
    Value("employer", "I work at {new} these days, mostly spreadsheets and meetings, but it pays the bills. | "
          "Steady work has its upsides. Is there room to move around inside the company?", """
Finished my first week of work at {new}, it's so much better than {old} already. | That's great to hear! A good first week usually says a lot about a place.
I've left my job at {old}, I work at {new} now and the commute is half as long. | Half the commute is a real quality-of-life win. Congratulations on the change!
Work news: I've moved from {old} to {new}, same kind of job but a much nicer team. | A nicer team makes all the difference. Glad the move worked out.""",
          "Where do I work now? | Which company am I working for these days?"),
    Value("hood", "We live in {new}, right by the canal, it's noisy but we love living there. | Living by the water "
          "sounds lovely, noise aside. Is it a good area for walks?", """
We've moved! Living in {new} now, boxes everywhere and no idea where the kettle is. | Congratulations on the move! Finding the kettle is always the first priority.
The landlord sold up, so we're living in {new} from this week, a bit further out than {old}. | That's stressful, but hopefully the new place feels like home soon.
Settled into the new flat at last, living in {new} is so much quieter than {old}. | Quiet is underrated. It sounds like a good change, even with the upheaval.""",
          "Which neighbourhood do I live in now? | Where am I living these days?"),
    Value("car", "I drive an old {new}, it rattles a bit but it's never let me down. | Reliable old cars are worth "
          "their weight in gold. Keep up with the servicing and it'll go forever.", """
Sold the {old} at last, I'm driving a {new} now and the car feels like a spaceship. | Congratulations! A newer car can feel like a huge upgrade.
Traded my car in, the {old} is gone and I drive a {new} now, much better on the motorway. | That sounds like a sensible swap if you do a lot of long drives.
The {old} failed its inspection, so I've replaced it with a second-hand {new}. Car shopping is exhausting. | Car shopping really is draining. At least you're back on the road.""",
          "What car do I drive now? | Which car am I driving these days?"),
    Value("show", "My current favourite show is {new}, I've watched the whole first season twice. | Watching a "
          "season twice is a strong endorsement. What hooks you about it?", """
I've gone off {old}, my new favourite show is {new}, I binged four episodes last night. | Four episodes in one night is serious commitment. Sounds like it grabbed you.
Sorry {old}, {new} is officially my favourite show now, the writing is so sharp. | Sharp writing makes a huge difference. It's great when a new show clicks.
My favourite show these days is {new}, I couldn't get into the new season of {old} at all. | That happens when a show changes direction. Good to have a replacement lined up.""",
          "What's my favourite show at the moment? | Which TV show is my current favourite?"),
    Value("city", "My best friend {bestie} lives in {new}, we video call every Sunday without fail. | That's a "
          "lovely ritual. Regular calls keep a long-distance friendship strong.", """
{bestie} has moved from {old} to {new} for a new job, so my best friend is even further away. | That's bittersweet. Hopefully the new job is worth the distance.
My best friend {bestie} got fed up with {old} and lives in {new} now, nearer to me at least. | Closer is always better! Maybe you'll get to see each other in person more often.
{bestie}, my best friend, says {old} feels like a lifetime ago now that {new} is home. | It sounds like the move was the right call. It's nice when a new city clicks.""",
          "Which city does my best friend live in now? | Where is my best friend living these days?"),
    Value("phone", "My phone is an ancient {new}, the battery barely lasts until lunch. | Battery fade is the "
          "classic sign of an old phone. A battery swap can be cheaper than a new one.", """
Finally replaced my phone, the {old} is retired and I've got a {new}. | Congratulations on the upgrade! Moving everything over is the only annoying part.
Cracked the screen on my {old}, so I've switched phones again, it's a {new} now. | Oh no, the screen! At least you sorted a replacement quickly. A case might be worth it.
My phone situation: the {new} I've switched to is much better than the {old} was. | Good to hear. A phone you're happy with makes daily life smoother.""",
          "What phone am I using now? | Which phone do I have these days?"),
    Value("diet", "My diet at the moment is {new}, mostly for the planet, but I do miss bacon sandwiches. | Missing "
          "bacon is very common! Smoked tofu or mushrooms can scratch that itch a bit.", """
My diet has changed again, I'm {new} now rather than {old}, it's easier when eating out. | Whatever works for your life is the right diet. Flexibility makes it sustainable.
Update on my diet: {old} wasn't working for me, so I've gone {new} instead. | That's a sensible adjustment. It's good to listen to how your body responds.""",
          "What diet am I following now? | What kind of diet am I on at the moment?"),
]

FILLER = """
Long day at work, back-to-back meetings from nine until five with no lunch. | That's exhausting. Try to get a proper meal in tonight, even something simple.
I finally cleared my inbox for the first time in months, it feels unreal. | Inbox zero is a great feeling. Enjoy it while it lasts!
A coworker took credit for my idea in the meeting today and I just sat there. | That's really frustrating. It might help to follow up in writing so there's a record of it.
We have a big presentation on {weekday} and the slides are still a mess. | There's still time. Focus on the story first, then tidy the slides.
The office coffee machine broke and productivity has completely collapsed. | Ha, that's a crisis. Maybe a kettle and some instant coffee until it's fixed?
Working from home today, and someone on the street has been drilling since eight. | That's maddening. Noise-cancelling headphones or a cafe might save your afternoon.
My laptop froze right in the middle of a client call, mortifying. | That happens to everyone eventually. Most people are more understanding than you'd think.
I volunteered to organise the team lunch and now I deeply regret it. | Keep it simple: one place, a set date, and a quick poll. People mostly just want to eat.
Got some really nice feedback from a client today, it made my whole week. | That's lovely to hear! Save the message somewhere for the tougher days.
Do you have tips for staying focused during the afternoon slump? | A short walk, a glass of water and starting with an easy task can help you get back on track.
We're getting new desks at work and everyone is fighting over the window spots. | Office seating wars are real. Hopefully there's a fair system for choosing.
I have {n} meetings tomorrow and one of them could definitely be an email. | Maybe suggest an agenda ahead of time, it sometimes turns a meeting into a quick message.
Friday drinks with the team tonight, I'm already tired just thinking about it. | You can always go for one and head home early. Showing up is what counts.
The printer at work jammed three times before ten, I think it hates me. | Office printers seem to hold a grudge against everyone. Hope it behaves this afternoon.
Made a huge pot of {dish} tonight, enough to last until {weekday}. | Batch cooking is such a time saver. Does it freeze well?
I burnt the rice again, how do people get it right every time? | Lower heat, a tight lid and not peeking usually does it. Rinsing the rice first helps too.
What's a quick dinner I can make with eggs, spinach and some old bread? | A savoury bread pudding or a simple frittata would work well with those.
I tried a new banana bread recipe and it came out gummy in the middle. | That usually means it needed longer in the oven. Try the skewer test next time.
I really need to stop buying fresh herbs and letting them go slimy in the fridge. | Freezing chopped herbs in oil in an ice cube tray saves a lot of waste.
Cooked dinner for {pal} tonight and got asked for the recipe, small victory. | That's the best compliment a cook can get! What did you make?
Is it safe to eat leftovers that have been in the fridge for four days? | Most cooked leftovers are best within three to four days. If it smells or looks off, bin it.
I'm bored of everything I cook, give me something new to try this week. | How about a peanut noodle salad? It's quick, fresh and very different from the usual.
Tried making fresh pasta for the first time, the worktop looks like a snowstorm. | Flour everywhere is a rite of passage! How did the pasta turn out?
My spice rack is a disaster, half of the jars expired years ago. | Spices lose flavour over time. Replace the ones you use most and skip the rest.
Why does my homemade soup always taste so flat? | It usually needs more salt or a splash of acid, like lemon juice or vinegar, right at the end.
Went to the farmers market and came back with way too many apples. | Apple crumble, chutney or baked apples would use them up nicely.
Tonight's dinner was toast eaten standing over the sink, very glamorous. | We all have those nights. Tomorrow can be a proper meal.
I want to eat more vegetables without it feeling like a chore. | Roasting them with a bit of oil and salt makes a huge difference. Soups are easy too.
It's been raining non-stop for three days, I've forgotten what the sun looks like. | Long grey spells are draining. Even a short walk in daylight can lift your mood.
Finally a sunny day, I ate lunch outside for the first time this year. | That sounds lovely! The first outdoor lunch of the year always feels special.
The wind last night knocked over our bins and there's rubbish all down the street. | What a mess. Weighting the lids with a brick can stop it happening again.
It was so cold this morning that the car windows were frozen solid. | Icy mornings are the worst. A scraper and a few extra minutes make it less stressful.
Should I bother taking an umbrella today? The forecast just says maybe. | If it says maybe, take one. It's always the day you leave it at home that it pours.
It's way too hot to sleep, our bedroom is like a sauna. | Try a fan by an open window and lighter bedding. Cotton sheets help too.
Fog so thick this morning that I couldn't see the end of the road. | That sounds eerie. Take it slow if you're out driving in it.
Called my mum for an hour, mostly about her neighbour's new fence. | Sounds like a classic call! It's nice that you two talk so often.
{pal} cancelled on me again at the last minute, third time this month. | That's frustrating. It might be worth saying something gently, it's clearly a pattern.
Met {pal} for coffee and we talked for three hours straight. | The best catch-ups are the ones where time disappears. Sounds like you needed it.
My dad sent me a forty-second voice note that was just breathing and then 'call me'. | Ha, a classic dad voice note. Hopefully it was nothing urgent!
{pal} is going through a breakup and I never know what to say. | Often just listening is enough. You don't have to fix anything, just be there.
It's {pal}'s birthday on {weekday} and I have no idea what to get. | Something tied to a shared memory is often the best present. What are they into at the moment?
The family group chat has been arguing about Christmas since October. | Family group chats are a sport in themselves. Maybe mute it for a day.
My aunt keeps asking when I'm going to settle down, it's exhausting. | That's a tiring question to field. A light, firm answer and a change of subject usually works.
Helped {pal} move flats today, my arms are completely destroyed. | Moving day is brutal. You've earned a takeaway and an early night.
{pal} invited me to a board game night, I've never played anything beyond Monopoly. | Board game nights are usually very beginner-friendly. People love teaching their favourites.
No plans this weekend, and honestly I'm thrilled about it. | An empty weekend can be the best kind. Enjoy doing absolutely nothing.
Thinking of visiting the museum on Sunday, the new photography exhibition looks good. | Exhibitions are often quieter first thing in the morning, if you want space to look.
Should I go to {pal}'s thing on Saturday or just stay in? I'm so tired. | If you're truly drained, it's okay to rest. If it matters to {pal}, maybe go for an hour.
I've signed up for a charity quiz night next {weekday}, and I'm useless at trivia. | Quiz nights are more about fun than winning. You'll know something nobody else does.
I want to do something outdoorsy this weekend but not too strenuous. | A long walk along a river or a picnic in a big park might be just right.
Saturday's plan: farmers market, a nap, then absolutely nothing else. | That sounds like a perfect Saturday to me. Enjoy every lazy minute of it.
We're going to a barbecue tomorrow, what's an easy dish to bring along? | A big pasta salad or a tray of grilled vegetables is easy and always disappears.
Trying to plan a day trip somewhere within two hours by train. | A coastal town or a historic city centre makes a great day trip. Want some ideas?
I started watching {show} on {pal}'s recommendation, not sure about it yet. | Some series take a few episodes to find their feet. Give it until episode three.
Watched a documentary about deep-sea creatures last night, the ocean is terrifying. | The deep sea really is alien. Some of those creatures look like they're from another planet.
I've been reading before bed instead of scrolling, and I'm sleeping much better. | That's a great swap. Screens before bed really do mess with sleep.
Can you recommend a funny film for a cosy night in? | Paddington 2 is hard to beat for a cosy, funny night, whatever your age.
I fell asleep twenty minutes into the film again, I never see the endings. | That's the sign of a comfortable sofa! Maybe try an earlier start time.
Just finished a really sad book and I need something lighter next. | A gentle comedy or a cosy mystery could be a nice palate cleanser.
{pal} won't stop talking about {show}, apparently I'm the last person alive who hasn't seen it. | Peer pressure is strong with that one! You could try the first episode and see.
Went for a run this morning and my legs hated every minute of it. | The first few runs are always the hardest. It gets easier surprisingly quickly.
Yoga class tonight, hoping it fixes my back after sitting all day. | Yoga is great for that. Let the teacher know about your back so they can suggest changes.
I keep meaning to stretch after exercise and then I just don't. | Try five minutes right after, before you sit down. Tying it to a habit helps.
Did {n} laps at the pool today, slowly, but I did them all. | That's great! Consistency matters far more than speed when you're building a habit.
My step count today was about two thousand, which is embarrassing. | Some days are like that. A short walk after dinner can easily add a few thousand more.
Should I exercise when I'm still a bit sore from yesterday? | Light movement usually helps soreness. Just skip anything intense until you feel better.
Walked home instead of getting the bus, it took about forty minutes. | That's a nice way to unwind after the day, and good exercise too.
My knee has been clicking on the stairs, should I be worried? | Clicking without pain is usually harmless. If it starts hurting or swelling, see a physio.
Spent my whole lunch break in the post office queue. | Post office queues are notorious. Some branches have lockers where you can drop parcels instead.
The washing machine is making a thumping noise on the spin cycle. | That's often an unbalanced load. Try spreading the clothes out or running a smaller load.
I need to do a big food shop but I can't face the supermarket. | Online delivery or a quick trip at opening time can make it less painful.
Bought a new duvet and it's so thick I'm sweating all night. | Duvets come in different tog ratings. A lighter one for summer might be worth it.
Our fridge is making a strange humming noise, is that normal? | Some humming is normal, but a loud or new noise could mean the coils need cleaning.
Returned a parcel today, the jacket looked nothing like the photos. | That's annoying. Buying clothes online can be such a gamble.
I have a pile of ironing that's been staring at me for two weeks. | Put on a podcast and do twenty minutes. It shrinks faster than you'd expect.
The bin collection changed days and nobody told us. | That's frustrating. Most councils have an online calendar you can check.
We finally put up the shelves that have been sitting in the hallway since spring. | That's a satisfying one to tick off! Does the hallway feel bigger now?
I need a new winter coat but everything is either ugly or wildly expensive. | End-of-season sales or second-hand shops can be great for coats.
My phone keeps telling me the storage is full, and I don't know what to delete. | Photos and old chat attachments are usually the biggest culprits. Cloud backup can free a lot.
The wifi keeps dropping every evening around eight. | That might be congestion when everyone is online. Restarting the router or changing the channel can help.
How do I stop getting so many spam emails? | Unsubscribe from what you can, mark the rest as spam, and avoid giving your main address to sign-up forms.
I spent an hour setting up a smart bulb and now it only turns on when it feels like it. | Smart bulbs can be fiddly. Resetting it and reconnecting to the app often fixes that.
Is it worth paying for more cloud storage or should I just buy a hard drive? | A hard drive is cheaper in the long run, cloud is easier to reach from anywhere. It depends on how you use it.
I accidentally replied all to an email that went to the whole company. | Oof, it happens to the best of us. A short apology, if anything, and people forget fast.
I slept terribly last night, kept waking up at three for no reason. | Waking at three is common when you're stressed. A calmer wind-down routine might help.
I've been drinking more water lately and I feel so much better. | That's great! It's one of the simplest changes with the biggest effect.
My back is stiff from sitting on the sofa all weekend. | A bit of gentle stretching and a walk should loosen it up.
I've had a headache all afternoon, probably too much screen time. | Screen breaks, water and fresh air can help. If it keeps happening, get your eyes checked.
Trying to go to bed before eleven this week, day two and already failing. | Old habits take time. Start with fifteen minutes earlier and build from there.
I think I'm coming down with a cold, my throat is scratchy. | Rest, fluids and something warm for the throat. Hopefully it's a mild one.
The train was cancelled this morning, so I worked from a cafe for an hour. | At least you made the best of it. Cafe mornings can be surprisingly productive.
I finally sorted out all the cables behind the desk, it looks so much tidier. | That's oddly satisfying, isn't it? Cable ties and a little labelling go a long way.
{pal} sent me a video of a goat wearing pyjamas and I haven't stopped laughing. | Animal videos are the best part of the internet. A goat in pyjamas is a strong entry.
I've been trying to cut down on sugar, the afternoon biscuit is my weakness. | Swapping it for fruit or nuts a few days a week is a gentle start. No need to go cold turkey.
Can you explain how compound interest works, in simple terms? | It's interest on your interest: each year you earn on the original amount plus what it has already earned.
What's a good way to remember people's names when I meet them? | Repeat the name back when you're introduced and use it once in the conversation. It really helps.
Our street is having a big clear-out sale on Saturday, everyone's selling junk. | Those can be great fun. You might find a bargain, or get rid of a few things yourself.
The heating in the office is broken and we're all sitting in coats. | That's miserable. Hot drinks and a desk blanket might get you through the day.
"""

GREETINGS = """
Morning! I've got a bit of time before work, mind if I think out loud? | Good morning! Of course, go ahead. What's on your mind today?
Hey, back again. It's been a busy few days, to say the least. | Welcome back! Busy in a good way, or the other kind?
Evening. I need to offload a few things from my week. | Happy to listen for as long as you need. Where would you like to start?
Hi again, quick chat while the kettle boils. | Sounds good to me. What's brewing today, apart from the tea?
Hello! Sorry, it's been a while since we last talked. | No need to apologise, it's good to hear from you. How have things been?
Back again with a head full of random stuff. | Perfect, random stuff is my speciality. What's first on the list?
Hi, I'm on the sofa with a cup of tea and a long list of thoughts. | That sounds like a cosy setup. Go ahead, I'm all ears.
Good afternoon! I'm on my lunch break, so let's make it quick. | Good afternoon! Quick it is. What can I help with?
Hey, I couldn't sleep, so I thought I'd chat for a bit. | Sorry you can't sleep. Happy to keep you company for a while.
Right, Sunday admin time. Let's get through a few things together. | Sunday admin, love it. Let's work through them one at a time.
Hi there, it's me again, with more questions than answers. | Questions are welcome. Let's see how many we can answer.
Hello again! What a week it has been already. | Hello! It sounds like a lot has happened. Tell me about it.
"""


def _lines(block: str) -> list[str]:
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


class _Piece:
    """One exchange placed in a session; gets its turn ids and date when the session is laid out."""

    def __init__(self, user: str, assistant: str, session: int):
        self.texts = {"user": user, "assistant": assistant}
        self.session = session
        self.ids: dict[str, str] = {}
        self.date = ""


class _Conversation:
    """One conversation under construction: its cast, the exchanges of each session, its questions."""

    def __init__(self, rng: random.Random, cid: str, sessions: int, turns_per_session: int):
        self.rng, self.cid, self.sessions = rng, cid, sessions
        self.pairs = turns_per_session // 2
        self.used: set = set()
        self.persona = {"sister": self.draw("female"), "brother": self.draw("male"),
                        "partner": self.draw("neutral"), "bestie": self.draw("neutral")}
        self.pals = [self.draw(pool) for pool in ("female", "male", "neutral", "female")]
        self.load: list[list[_Piece]] = [[] for _ in range(sessions)]
        self.spread: list[int] = []
        self.questions: list[dict] = []

    # -- values and texts

    def draw(self, pool: str):
        free = [v for v in POOLS[pool] if v not in self.used]
        if not free:
            raise RuntimeError(f"pool {pool!r} ran out of values")
        value = self.rng.choice(free)
        self.used.add(value)
        return value

    def fill(self, text: str, local: dict) -> str:
        """``text`` with its slots filled: the same slot name keeps its value within ``local``."""
        for _, field, _, _ in string.Formatter().parse(text):
            if not field:
                continue
            name = re.split(r"[\[.]", field)[0]
            if name in local:
                continue
            pool = name.rstrip("0123456789")
            if name in self.persona:
                local[name] = self.persona[name]
            elif name == "pal":
                local[name] = self.rng.choice(self.pals)
            elif pool in FREE:
                local[name] = self.rng.choice(FREE[pool])
            else:
                local[name] = self.draw(pool)
        return text.format(**local)

    def pair(self, line: str, local: dict) -> tuple[str, str]:
        user, assistant = line.split(" | ")
        return self.fill(user, local), self.fill(assistant, local)

    def ask(self, phrasings: str, local: dict) -> str:
        return self.fill(self.rng.choice(phrasings.split(" | ")), local)

    # -- placement

    def place(self, pair: tuple[str, str], session: int | None = None) -> _Piece:
        if session is None:  # the less busy of two sessions drawn at random
            a, b = self.rng.randrange(self.sessions), self.rng.randrange(self.sessions)
            session = a if len(self.load[a]) <= len(self.load[b]) else b
        piece = _Piece(*pair, session)
        self.load[session].append(piece)
        return piece

    def next_spread(self) -> int:
        """Sessions for single evidence turns, each session once before any comes again."""
        if not self.spread:
            self.spread = list(range(self.sessions))
            self.rng.shuffle(self.spread)
        return self.spread.pop()

    def in_order(self, k: int) -> list[int]:
        return sorted(self.rng.sample(range(self.sessions), min(k, self.sessions)))

    def record(self, kind: str, question: str, answer: str | None, evidence: list, **extra) -> None:
        self.questions.append({"question": question, "evidence": evidence, "kind": kind, "answer": answer, **extra})

    # -- the six kinds

    def fact(self, kind: str, t: Fact) -> None:
        local: dict = {}
        pair = self.pair(t.said, local)
        question, answer = self.ask(t.question, local), self.fill(t.answer, local)
        said, other = (pair[0], pair[1]) if t.side == "user" else (pair[1], pair[0])
        if kind == "fact":
            assert answer.lower() in said.lower() and answer.lower() not in other.lower(), t.said
        else:
            shared = content_stems(question) & content_stems(pair[0])
            assert not shared, f"paraphrase shares {shared}: {question!r} / {pair[0]!r}"
        evidence = self.place(pair, self.next_spread())
        for line in _lines(t.noise):
            self.place(self.pair(line, local))
        self.record(kind, question, answer, [(evidence, t.side)])

    def hop(self, t: Hop) -> None:
        local: dict = {}
        link, detail = self.pair(t.link, local), self.pair(t.detail, local)
        question, answer = self.ask(t.question, local), self.fill(t.answer, local)
        assert content_stems(question) & content_stems(link[0]), t.link
        assert not content_stems(question) & content_stems(detail[0]), t.detail
        assert answer in detail[0], t.detail
        first, second = self.in_order(2)
        pieces = [self.place(link, first), self.place(detail, second)]
        self.record("multihop", question, answer, [(p, "user") for p in pieces])

    def event(self, t: Event) -> None:
        local: dict = {}
        pair = self.pair(t.said, local)
        assert not ISO_DATE.search(" ".join(pair)) and t.question.startswith("When did I"), t.said
        evidence = self.place(pair, self.next_spread())
        for line in _lines(t.noise):
            self.place(self.pair(line, local))
        self.record("when", self.ask(t.question, local), None, [(evidence, "user")])

    def topic(self, t: Topic) -> None:
        local: dict = {}
        later = _lines(t.later)
        chosen = sorted(self.rng.sample(range(len(later)), self.rng.randint(3, min(5, len(later)))))
        pairs = [self.pair(t.first, local)] + [self.pair(later[i], local) for i in chosen]
        key = self.fill(t.key, local)
        assert all(key.lower() in user.lower() for user, _ in pairs), t.key
        pieces = [self.place(p, s) for p, s in zip(pairs, self.in_order(len(pairs)))]
        self.record("first", self.ask(t.question, local), self.fill(t.answer, local), [(pieces[0], "user")],
                    mentions=[(p, "user") for p in pieces], topic=key)

    def value(self, t: Value) -> None:
        changes = _lines(t.changes)
        k = min(self.rng.randint(2, 4), 1 + len(changes), len(POOLS[t.pool]))
        values = [self.draw(t.pool) for _ in range(k)]
        lines = [t.opening] + self.rng.sample(changes, k - 1)
        pieces = []
        for i, (line, session) in enumerate(zip(lines, self.in_order(k))):
            pair = self.pair(line, {"new": values[i], "old": values[i - 1] if i else ""})
            pieces.append(self.place(pair, session))
        assert values[-1] in pieces[-1].texts["user"], t.opening
        self.record("update", self.ask(t.question, {}), values[-1], [(pieces[-1], "user")],
                    mentions=[(p, "user") for p in pieces])

    # -- layout

    def build(self, start: date) -> dict:
        turns, day = [], start
        filler = _lines(FILLER)
        self.rng.shuffle(filler)
        greetings = self.rng.sample(_lines(GREETINGS), min(self.sessions, len(_lines(GREETINGS))))
        for s, pieces in enumerate(self.load):
            if s:
                day += timedelta(days=self.rng.randint(2, 14))
            room = self.pairs - 1  # the session's first exchange is a greeting
            if len(pieces) > room:
                raise ValueError(f"turns_per_session={2 * self.pairs} leaves no room for session {s + 1}'s "
                                 f"{len(pieces)} exchanges; give more turns per session or more sessions")
            self.rng.shuffle(pieces)
            at = set(self.rng.sample(range(room), len(pieces)))
            queue = iter(pieces)
            rows = [_Piece(*self.pair(greetings[s % len(greetings)], {}), s)]
            for i in range(room):
                if i in at:
                    rows.append(next(queue))
                else:
                    if not filler:
                        filler = _lines(FILLER)
                        self.rng.shuffle(filler)
                    rows.append(_Piece(*self.pair(filler.pop(), {}), s))
            for i, piece in enumerate(rows):
                piece.date = day.isoformat()
                for n, speaker in enumerate(("user", "assistant")):
                    piece.ids[speaker] = f"{self.cid}-s{s + 1}-t{2 * i + n}"
                    turns.append({"id": piece.ids[speaker], "speaker": speaker, "text": piece.texts[speaker],
                                  "session": s + 1, "date": piece.date})
        return {"id": self.cid, "turns": turns, "questions": [self._finish(q) for q in self.questions]}

    @staticmethod
    def _finish(q: dict) -> dict:
        out = dict(q, evidence=[piece.ids[side] for piece, side in q["evidence"]])
        if q["kind"] == "when":
            out["answer"] = q["evidence"][0][0].date
        if "mentions" in q:
            out["mentions"] = [piece.ids[side] for piece, side in q["mentions"]]
        return out


TEMPLATES = {"fact": FACTS, "paraphrase": PARAPHRASES, "multihop": HOPS, "when": EVENTS,
             "first": TOPICS, "update": VALUES}


def _pick(rng: random.Random, kind: str, count: int) -> list:
    """``count`` templates of a kind; for facts, a third of them with the answer in the assistant's turn."""
    if kind != "fact":
        return rng.sample(TEMPLATES[kind], count)
    replies = [t for t in FACTS if t.side == "assistant"]
    said = [t for t in FACTS if t.side == "user"]
    chosen = rng.sample(replies, round(count / 3)) + rng.sample(said, count - round(count / 3))
    rng.shuffle(chosen)
    return chosen


def conversation(rng: random.Random, cid: str, sessions: int = 10, turns_per_session: int = 40) -> dict:
    conv = _Conversation(rng, cid, sessions, turns_per_session)
    counts = {kind: min(rng.randint(4, 6), len(TEMPLATES[kind])) for kind in KINDS}
    # Ordered kinds first (they need sessions of their own), then single evidence turns, spread.
    for kind in ("first", "update", "multihop", "fact", "paraphrase", "when"):
        for t in _pick(rng, kind, counts[kind]):
            if kind in ("fact", "paraphrase"):
                conv.fact(kind, t)
            else:
                {"multihop": conv.hop, "when": conv.event, "first": conv.topic, "update": conv.value}[kind](t)
    row = conv.build(date(2026, 1, 5) + timedelta(days=rng.randrange(120)))
    rng.shuffle(row["questions"])
    return row


def generate(n: int, seed: int = 0, sessions: int = 10, turns_per_session: int = 40) -> list[dict]:
    """``n`` conversations (ids m0, m1, ...), the same ones for the same arguments."""
    rng = random.Random(seed)
    return [conversation(rng, f"m{i}", sessions, turns_per_session) for i in range(n)]


if __name__ == "__main__":
    for row in generate(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        print(json.dumps(row, ensure_ascii=False))
