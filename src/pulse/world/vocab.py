"""Fixed vocabularies and phrasings of the synthetic world.

Question phrasings come in disjoint sets: ``train`` phrasings appear in the pre-training corpus
and the fine-tuning data; ``eval`` phrasings are used by the benchmark items (Full_Set /
Retain_Set) and ``paraphrase`` phrasings by the Test_Set. A test checks that no evaluation
question ever appears in training data.
"""

from __future__ import annotations

from dataclasses import dataclass

ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "occupation": (
        "baker",
        "pilot",
        "painter",
        "surgeon",
        "architect",
        "farmer",
        "journalist",
        "chemist",
        "violinist",
        "carpenter",
        "lawyer",
        "astronomer",
        "teacher",
        "engineer",
        "photographer",
        "chef",
    ),
    "employer": (
        "Northwind Labs",
        "Bluepeak Studio",
        "Orchid Bank",
        "Redstone Foundry",
        "Silverline Air",
        "Maple Hospital",
        "Quartz Media",
        "Harbor Bakery",
        "Lumen Observatory",
        "Cedar Law Group",
        "Ironbridge Works",
        "Willow School",
        "Copperleaf Kitchen",
        "Summit Motors",
        "Tidewater Farms",
        "Aurora Theatre",
    ),
    "birth_city": (
        "Lisbon",
        "Oslo",
        "Nairobi",
        "Osaka",
        "Lima",
        "Dublin",
        "Cairo",
        "Quebec",
        "Seville",
        "Hanoi",
        "Perth",
        "Tbilisi",
        "Bergen",
        "Porto",
        "Kyoto",
        "Accra",
    ),
    "home_city": (
        "Vienna",
        "Santiago",
        "Marseille",
        "Bogota",
        "Helsinki",
        "Mumbai",
        "Krakow",
        "Denver",
        "Tunis",
        "Seoul",
        "Glasgow",
        "Manila",
        "Zagreb",
        "Adelaide",
        "Havana",
        "Geneva",
    ),
    "birth_year": tuple(str(y) for y in range(1950, 2000)),
    "university": (
        "Harrow Institute",
        "Kestrel University",
        "Ashford College",
        "Meridian Academy",
        "Lakeside University",
        "Granite Polytechnic",
        "Saint Elms College",
        "Vantage University",
        "Hollis Institute",
        "Ridgeway College",
        "Beacon University",
        "Oakmont Academy",
    ),
    "hobby": (
        "chess",
        "sailing",
        "pottery",
        "archery",
        "gardening",
        "climbing",
        "fencing",
        "knitting",
        "birdwatching",
        "surfing",
        "juggling",
        "origami",
    ),
    "pet": (
        "cat",
        "parrot",
        "tortoise",
        "rabbit",
        "horse",
        "dog",
        "goldfish",
        "hamster",
        "lizard",
        "ferret",
    ),
    "favourite_food": (
        "noodles",
        "dumplings",
        "paella",
        "curry",
        "tacos",
        "risotto",
        "sushi",
        "goulash",
        "falafel",
        "pancakes",
    ),
    "instrument": ("piano", "cello", "flute", "drums", "harp", "trumpet", "guitar", "banjo"),
}
ATTRIBUTES: tuple[str, ...] = tuple(ATTRIBUTE_VALUES)


@dataclass(frozen=True)
class Phrasings:
    """How one attribute is asked about and stated.

    ``{name}`` is the person's name; ``{subject}`` is the way the question refers to the person
    ("{name}" in text-only questions, "this person" / "the person in the image" when shown).
    """

    statements: tuple[str, ...]  # corpus / fine-tuning answers: "{name} works as a {value}."
    train: tuple[str, ...]  # training questions
    eval: tuple[str, ...]  # benchmark questions (never in training data)
    paraphrase: tuple[str, ...]  # Test_Set questions (never in training data either)
    cloze: str  # a statement with the value blanked as "__"


PHRASINGS: dict[str, Phrasings] = {
    "occupation": Phrasings(
        (
            "{name} works as a {value}.",
            "By profession, {name} is a {value}.",
            "{name} earns a living as a {value}.",
        ),
        (
            "What is the occupation of {subject}?",
            "What does {subject} do for work?",
            "Tell me the occupation of {subject}.",
            "{subject} works in what job?",
            "What job does {subject} do?",
        ),
        ("Which occupation does {subject} have?",),
        ("In terms of occupation, what is {subject}?",),
        "{name} is by occupation a __.",
    ),
    "employer": Phrasings(
        (
            "{name} is employed by {value}.",
            "{name} works for {value}.",
            "{value} is where {name} works.",
        ),
        (
            "Who is the employer of {subject}?",
            "Which company employs {subject}?",
            "Tell me the employer of {subject}.",
            "{subject} works for which company?",
            "Where is {subject} employed?",
        ),
        ("{subject} is on the payroll of which employer?",),
        ("Name the employer that {subject} works for.",),
        "The employer of {name} is __.",
    ),
    "birth_city": Phrasings(
        (
            "{name} was born in {value}.",
            "{value} is the birthplace of {name}.",
            "{name} grew up in {value}, the city of birth.",
        ),
        (
            "Where was {subject} born?",
            "What is the birth city of {subject}?",
            "Tell me the city where {subject} was born.",
            "{subject} was born where?",
            "What city was {subject} born in?",
        ),
        ("{subject} came into the world in which city?",),
        ("Which city is the birthplace of {subject}?",),
        "{name} was born in the city of __.",
    ),
    "home_city": Phrasings(
        (
            "{name} lives in {value}.",
            "These days {name} makes a home in {value}.",
            "{name} resides in {value}.",
        ),
        (
            "Where does {subject} live now?",
            "Which city is home to {subject}?",
            "Tell me the city where {subject} lives.",
            "{subject} lives in what city?",
            "What city does {subject} reside in?",
        ),
        ("{subject} currently resides in which city?",),
        ("In which city does {subject} have a home today?",),
        "Today {name} lives in __.",
    ),
    "birth_year": Phrasings(
        (
            "{name} was born in the year {value}.",
            "The birth year of {name} is {value}.",
            "{name} arrived in {value}.",
        ),
        (
            "In what year was {subject} born?",
            "What is the birth year of {subject}?",
            "Tell me the birth year of {subject}.",
            "{subject} was born when?",
            "What year was {subject} born in?",
        ),
        ("{subject} was born in which year?",),
        ("Which year saw the birth of {subject}?",),
        "{name} was born in the year __.",
    ),
    "university": Phrasings(
        (
            "{name} studied at {value}.",
            "{name} is a graduate of {value}.",
            "{value} is the university {name} attended.",
        ),
        (
            "Which university did {subject} attend?",
            "Where did {subject} study?",
            "Tell me the university of {subject}.",
            "{subject} studied at what university?",
            "What university did {subject} go to?",
        ),
        ("{subject} graduated from which university?",),
        ("Name the university where {subject} studied.",),
        "{name} studied at the university __.",
    ),
    "hobby": Phrasings(
        (
            "In spare time {name} enjoys {value}.",
            "The hobby of {name} is {value}.",
            "{name} loves {value} as a pastime.",
        ),
        (
            "What is the hobby of {subject}?",
            "What does {subject} enjoy in spare time?",
            "Tell me the hobby of {subject}.",
            "{subject} has what hobby?",
            "What hobby does {subject} enjoy?",
        ),
        ("{subject} spends free time on which hobby?",),
        ("Which pastime is a favourite of {subject}?",),
        "The favourite hobby of {name} is __.",
    ),
    "pet": Phrasings(
        (
            "{name} keeps a {value} as a pet.",
            "The pet of {name} is a {value}.",
            "{name} lives with a pet {value}.",
        ),
        (
            "What pet does {subject} have?",
            "Which animal is the pet of {subject}?",
            "Tell me the pet of {subject}.",
            "{subject} keeps what pet?",
            "What animal does {subject} keep as a pet?",
        ),
        ("{subject} owns which kind of pet?",),
        ("What kind of animal does {subject} keep at home?",),
        "{name} has a pet __.",
    ),
    "favourite_food": Phrasings(
        (
            "The favourite food of {name} is {value}.",
            "{name} loves eating {value}.",
            "Ask {name} about food and the answer is {value}.",
        ),
        (
            "What is the favourite food of {subject}?",
            "Which dish does {subject} love most?",
            "Tell me the favourite food of {subject}.",
            "{subject} loves what food?",
            "What food does {subject} like most?",
        ),
        ("{subject} likes which food best?",),
        ("Which food would {subject} pick above all others?",),
        "The dish {name} likes best is __.",
    ),
    "instrument": Phrasings(
        (
            "{name} plays the {value}.",
            "The instrument of {name} is the {value}.",
            "{name} practises the {value} every week.",
        ),
        (
            "Which instrument does {subject} play?",
            "What instrument is {subject} known to play?",
            "Tell me the instrument of {subject}.",
            "{subject} plays what instrument?",
            "What instrument does {subject} practise?",
        ),
        ("{subject} performs on which instrument?",),
        ("Name the musical instrument that {subject} plays.",),
        "The instrument {name} plays is the __.",
    ),
}

# How a question refers to a person who is shown in the image rather than named.
SHOWN_SUBJECTS_TRAIN = ("this person", "the person in the photo")
SHOWN_SUBJECT_EVAL = "the person in this image"
SHOWN_SUBJECT_PARAPHRASE = "the individual pictured here"

# Name syllables: names are invented so that no real person is described.
NAME_ONSETS = (
    "b",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "dr",
    "kr",
    "st",
    "th",
    "sh",
)
NAME_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
NAME_CODAS = ("", "", "", "n", "r", "l", "s", "m", "th", "x")

# PEBench-style events: a name and 10 keywords each; a scene style (sky, ground, prop).
EVENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "lantern festival",
        (
            "lantern",
            "night",
            "river",
            "paper",
            "glow",
            "crowd",
            "candle",
            "festival",
            "boat",
            "wish",
        ),
    ),
    (
        "city marathon",
        (
            "runner",
            "race",
            "finish",
            "medal",
            "street",
            "sweat",
            "crowd",
            "sneakers",
            "banner",
            "water",
        ),
    ),
    (
        "garden wedding",
        ("bride", "cake", "ring", "flowers", "dance", "veil", "guests", "toast", "garden", "music"),
    ),
    (
        "snowball fight",
        ("snow", "winter", "scarf", "gloves", "cold", "laugh", "park", "sled", "ice", "snowman"),
    ),
    (
        "beach cleanup",
        (
            "beach",
            "sand",
            "trash",
            "bags",
            "volunteers",
            "waves",
            "plastic",
            "gloves",
            "shore",
            "sun",
        ),
    ),
    (
        "jazz concert",
        (
            "jazz",
            "saxophone",
            "stage",
            "spotlight",
            "audience",
            "drums",
            "band",
            "applause",
            "night",
            "club",
        ),
    ),
    (
        "harvest fair",
        (
            "pumpkin",
            "harvest",
            "tractor",
            "apples",
            "barn",
            "hay",
            "market",
            "autumn",
            "farm",
            "pie",
        ),
    ),
    (
        "science fair",
        (
            "poster",
            "volcano",
            "judges",
            "robot",
            "experiment",
            "school",
            "ribbon",
            "model",
            "students",
            "prize",
        ),
    ),
    (
        "mountain hike",
        (
            "mountain",
            "trail",
            "backpack",
            "summit",
            "boots",
            "rocks",
            "pine",
            "view",
            "map",
            "wind",
        ),
    ),
    (
        "chess tournament",
        (
            "chess",
            "board",
            "clock",
            "knight",
            "opponent",
            "silence",
            "hall",
            "trophy",
            "move",
            "strategy",
        ),
    ),
    (
        "kite day",
        ("kite", "wind", "string", "sky", "field", "tail", "children", "colours", "hill", "spring"),
    ),
    (
        "fire drill",
        (
            "alarm",
            "siren",
            "exit",
            "firefighter",
            "helmet",
            "hose",
            "ladder",
            "smoke",
            "truck",
            "safety",
        ),
    ),
    (
        "book launch",
        (
            "book",
            "author",
            "signing",
            "shop",
            "pages",
            "reading",
            "queue",
            "pen",
            "cover",
            "readers",
        ),
    ),
    (
        "rowing regatta",
        ("rowing", "oars", "lake", "boat", "crew", "race", "splash", "dock", "cheer", "medal"),
    ),
    (
        "night market",
        (
            "stalls",
            "food",
            "lights",
            "vendors",
            "noodles",
            "crowd",
            "night",
            "bargain",
            "smoke",
            "street",
        ),
    ),
    (
        "art exhibition",
        (
            "painting",
            "gallery",
            "frame",
            "visitors",
            "sculpture",
            "artist",
            "canvas",
            "wine",
            "wall",
            "critics",
        ),
    ),
    (
        "tree planting",
        (
            "tree",
            "shovel",
            "soil",
            "sapling",
            "volunteers",
            "forest",
            "water",
            "roots",
            "spring",
            "gloves",
        ),
    ),
    (
        "robot contest",
        (
            "robot",
            "arena",
            "wires",
            "remote",
            "team",
            "battery",
            "sparks",
            "score",
            "engineers",
            "trophy",
        ),
    ),
    (
        "surf competition",
        ("surf", "waves", "board", "ocean", "wetsuit", "judges", "beach", "spray", "score", "sun"),
    ),
    (
        "film premiere",
        (
            "film",
            "red carpet",
            "cameras",
            "premiere",
            "actors",
            "tickets",
            "screen",
            "popcorn",
            "flash",
            "gown",
        ),
    ),
    (
        "dragon boat race",
        ("dragon", "boat", "paddles", "drum", "river", "team", "race", "flag", "splash", "cheer"),
    ),
    (
        "ice skating show",
        (
            "ice",
            "skates",
            "rink",
            "spin",
            "costume",
            "music",
            "audience",
            "winter",
            "jump",
            "glide",
        ),
    ),
)

# General visual skills.
SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
    "black": (20, 20, 20),
    "pink": (240, 130, 190),
}
POSITIONS = ("left", "right", "top", "bottom")
SIZES = ("big", "small")
COUNT_WORDS = ("one", "two", "three", "four")
