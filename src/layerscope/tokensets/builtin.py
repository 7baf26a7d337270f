"""Built-in token sets: digits, number words, the nine word categories of seed 002, the echo words of seed 004."""

from __future__ import annotations

DIGITS = [str(d) for d in range(10)]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

CATEGORIES: dict[str, list[str]] = {
    "boy_first_names": [
        "James",
        "John",
        "Michael",
        "David",
        "Daniel",
        "Matthew",
        "Andrew",
        "Thomas",
        "Mark",
        "Paul",
        "Peter",
        "Kevin",
        "Brian",
    ],
    "girl_first_names": [
        "Mary",
        "Sarah",
        "Emma",
        "Emily",
        "Jessica",
        "Anna",
        "Laura",
        "Lisa",
        "Jennifer",
        "Karen",
        "Amy",
        "Rachel",
        "Susan",
    ],
    "countries": [
        "France",
        "Spain",
        "Italy",
        "Japan",
        "China",
        "Brazil",
        "Canada",
        "Mexico",
        "India",
        "Egypt",
        "Greece",
        "Turkey",
        "Peru",
    ],
    "capitals": [
        "Paris",
        "London",
        "Rome",
        "Tokyo",
        "Berlin",
        "Madrid",
        "Ottawa",
        "Cairo",
        "Athens",
        "Moscow",
        "Beijing",
        "Delhi",
        "Lima",
    ],
    "colors": [
        "red",
        "blue",
        "green",
        "yellow",
        "orange",
        "purple",
        "pink",
        "brown",
        "black",
        "white",
        "gray",
        "silver",
        "gold",
    ],
    "months": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    "emotions": [
        "happy",
        "sad",
        "angry",
        "excited",
        "scared",
        "surprised",
        "confused",
        "proud",
        "worried",
        "calm",
        "nervous",
        "grateful",
        "lonely",
    ],
    "action_verbs": [
        "run",
        "jump",
        "walk",
        "swim",
        "dance",
        "sing",
        "eat",
        "sleep",
        "read",
        "write",
        "play",
        "talk",
        "laugh",
    ],
    "occupations": [
        "teacher",
        "doctor",
        "nurse",
        "chef",
        "pilot",
        "farmer",
        "artist",
        "writer",
        "lawyer",
        "engineer",
        "dentist",
        "police",
        "firefighter",
    ],
}

# The words of seed 004's echo table (fed one token at a time, in leading-space form).
# Sets whose words have an order (a line through their points in a projection means something).
ORDERED_SETS = frozenset({"digits", "number-words", "months"})

ECHO_WORDS = [
    "John",
    "Michael",
    "Mary",
    "France",
    "Italy",
    "Rome",
    "red",
    "green",
    "January",
    "March",
    "happy",
    "sad",
    "angry",
    "run",
    "jump",
    "walk",
    "teacher",
    "doctor",
]

BUILTIN_SETS: dict[str, list[str]] = {
    "digits": DIGITS,
    "number-words": NUMBER_WORDS,
    **CATEGORIES,
    "echo-words": ECHO_WORDS,
}

# Names that expand to several sets at once.
GROUPS: dict[str, list[str]] = {"categories": list(CATEGORIES)}


def builtin_names() -> list[str]:
    """Every name ``--set`` accepts: the sets and the groups."""
    return [*BUILTIN_SETS, *GROUPS]
