#!/usr/bin/env python3
"""Generate src/stave/cli/data/white_album.unsigned.json (the demo and examples template).

An UNSIGNED stave CREATE_RELEASE_BUNDLE event (no ``sig`` field) for
The Beatles, "The Beatles" (the White Album), UK release 22 November 1968,
Apple Records, 2 x LP.

The shape (field names, nesting, and the quirks of the label records) follows
the canonical "CREATE_RELEASE_BUNDLE Event" example in the project seed. The
per-musician roles, guests and listen links for the first three tracks are
copied from that example; for the other 27 tracks only the commonly published
tracklist, songwriting credit and producer credit are encoded (see README.md).

Every id is a full 64-character lowercase hex string:

    sha256("stave-example:" + kind + ":" + name)

with kind one of person, group, label, city, role, track (tracks are keyed by
title, roles by role name), so the same entity gets the same id everywhere.

Standard library only. Running this script rewrites the JSON file
deterministically (2-space indent, ensure_ascii=False, trailing newline).
"""

import hashlib
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "src" / "stave" / "cli" / "data" / "white_album.unsigned.json"


def sid(kind, name):
    """Deterministic example id for an entity of the given kind."""
    return hashlib.sha256(f"stave-example:{kind}:{name}".encode()).hexdigest()


# --------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------

# city name -> (lat, long), coordinates as given in the seed
CITIES = {
    "London": (51.50735, -0.12776),
    "Los Angeles": (34.09834, -118.32674),
}

# Every person in the seed example has person_city London.
PERSON_CITY = "London"

JOHN = "John Lennon"
PAUL = "Paul McCartney"
GEORGE = "George Harrison"
RINGO = "Ringo Starr"
MARTIN = "George Martin"

BEATLES = [JOHN, PAUL, GEORGE, RINGO]  # member order as in the seed

GROUP_NAME = "The Beatles"
GROUP_ALTNAMES = "The Fab Four"  # a string in the seed, kept as-is

# Labels, copied from the seed with its quirks preserved:
#   Apple:   label_altnames is a STRING, label_parents is a STRING ""
#   EMI:     label_altnames is a list,   label_parents is a STRING ""
#   Capitol: label_parents is a LIST holding EMI's label_id
# (name, altnames, parents, city names); a parents entry ("label", name)
# is replaced by that label's id.
LABELS = [
    ("Apple Records", "Apple Corps", "", ["London"]),
    ("EMI Records", ["EMI", "EMI Group plc", "Electric and Musical Industries"], "", ["London"]),
    (
        "Capitol Records",
        ["Capitol Records, Inc.", "Capitol Records, LLC", "Capitol"],
        [("label", "EMI Records")],
        ["Los Angeles"],
    ),
]

# Songwriting credits as commonly published on the record.
LM = "Lennon–McCartney"
HARRISON = "Harrison"
STARKEY = "Starkey"
SONGWRITERS_BY_CREDIT = {
    # seed order for Lennon–McCartney songs: Paul McCartney, then John Lennon
    LM: [(PAUL, ["Songwriter"]), (JOHN, ["Songwriter"])],
    HARRISON: [(GEORGE, ["Songwriter"])],
    # printed on the record as "Richard Starkey"; stored under his usual name
    STARKEY: [(RINGO, ["Songwriter"])],
}

# The full tracklist: (disc_side, track_number, title, songwriting credit).
# Sides 1-2 are LP 1, sides 3-4 are LP 2; numbering restarts on each side.
TRACKLIST = [
    (1, 1, "Back in the U.S.S.R.", LM),
    (1, 2, "Dear Prudence", LM),
    (1, 3, "Glass Onion", LM),
    (1, 4, "Ob-La-Di, Ob-La-Da", LM),
    (1, 5, "Wild Honey Pie", LM),
    (1, 6, "The Continuing Story of Bungalow Bill", LM),
    (1, 7, "While My Guitar Gently Weeps", HARRISON),
    (1, 8, "Happiness Is a Warm Gun", LM),
    (2, 1, "Martha My Dear", LM),
    (2, 2, "I'm So Tired", LM),
    (2, 3, "Blackbird", LM),
    (2, 4, "Piggies", HARRISON),
    (2, 5, "Rocky Raccoon", LM),
    (2, 6, "Don't Pass Me By", STARKEY),
    (2, 7, "Why Don't We Do It in the Road?", LM),
    (2, 8, "I Will", LM),
    (2, 9, "Julia", LM),
    (3, 1, "Birthday", LM),
    (3, 2, "Yer Blues", LM),
    (3, 3, "Mother Nature's Son", LM),
    (3, 4, "Everybody's Got Something to Hide Except Me and My Monkey", LM),
    (3, 5, "Sexy Sadie", LM),
    (3, 6, "Helter Skelter", LM),
    (3, 7, "Long, Long, Long", HARRISON),
    (4, 1, "Revolution 1", LM),
    (4, 2, "Honey Pie", LM),
    (4, 3, "Savoy Truffle", HARRISON),
    (4, 4, "Cry Baby Cry", LM),
    (4, 5, "Revolution 9", LM),
    (4, 6, "Good Night", LM),
]

# Producer credit for the album, applied to every track.
PRODUCERS = [(MARTIN, ["Producer"])]

# Detailed credits for the first three tracks, copied from the seed example
# exactly (including its songwriter roles, its member roles, the absence of
# Ringo Starr from the first two tracks, and the "Glass Onion" guests).
# Tracks not listed here get: songwriters from SONGWRITERS_BY_CREDIT, no
# listen links, all four Beatles as members with no roles, and no guests.
SEED_TRACKS = {
    "Back in the U.S.S.R.": {
        "listen_link": [
            "https://open.spotify.com/track/0j3p1p06deJ7f9xmJ9yG22",
            "https://music.apple.com/us/song/back-in-the-u-s-s-r/1441133197",
        ],
        "songwriters": [
            (PAUL, ["Lyrics", "Songwriter"]),
            (JOHN, ["Songwriter"]),
        ],
        "members": [
            (JOHN, ["Backing Vocals", "Electric Guitar", "Drum Kit", "Percussion", "Handclaps", "Bass Guitar"]),
            (
                PAUL,
                [
                    "Lead Vocals",
                    "Backing Vocals",
                    "Bass Guitar",
                    "Drum Kit",
                    "Percussion",
                    "Handclaps",
                    "Electric Guitar",
                    "Piano",
                ],
            ),
            (GEORGE, ["Backing Vocals", "Electric Guitar", "Drum Kit", "Percussion", "Handclaps", "Bass Guitar"]),
        ],
        "guests": [],
    },
    "Dear Prudence": {
        "listen_link": [
            "https://open.spotify.com/track/5NQYyej46WQkgCbnzGD21W",
            "https://music.apple.com/us/song/dear-prudence/1441133428",
        ],
        "songwriters": [
            (PAUL, ["Songwriter"]),
            (JOHN, ["Lyrics", "Songwriter"]),
        ],
        "members": [
            (JOHN, ["Lead Vocals", "Backing Vocals", "Electric Guitar"]),
            (PAUL, ["Backing Vocals", "Bass Guitar", "Drum Kit", "Tambourine", "Handclaps", "Piano"]),
            (GEORGE, ["Backing Vocals", "Electric Guitar", "Tambourine", "Handclaps"]),
        ],
        "guests": [],
    },
    "Glass Onion": {
        "listen_link": [
            "https://open.spotify.com/track/2jAojvUaPoHPFSPpF0UNRo",
            "https://music.apple.com/us/song/glass-onion/1441133436",
        ],
        "songwriters": [
            (PAUL, ["Songwriter"]),
            (JOHN, ["Lyrics", "Songwriter"]),
            (MARTIN, ["String Arrangement"]),  # listed under songwriters in the seed
        ],
        "members": [
            (JOHN, ["Lead Vocals", "Backing Vocals", "Acoustic Guitar"]),
            (PAUL, ["Bass Guitar", "Recorder", "Piano"]),
            (GEORGE, ["Electric Guitar"]),
            (RINGO, ["Tambourine", "Drum Kit"]),
        ],
        "guests": [
            ("Chris Thomas", ["Recorder"]),
            ("Henry Datyner", ["Violin"]),
            ("Eric Bowie", ["Violin"]),
            ("Norman Lederman", ["Violin"]),
            ("Ronald Thomas", ["Violin"]),
            ("John Underwood", ["Viola"]),
            ("Keith Cummings", ["Viola"]),
            ("Eldon Fox", ["Cello"]),
            ("Reginald Kilby", ["Cello"]),
        ],
    },
}

RELEASE = {
    "release_name": "The Beatles",
    "release_altnames": ["The White Album"],
    "release_date": "1968-11-22",
    "release_format": ["LP"],
    # The seed's value is placeholder text ("Lorem ipsum"); no liner notes
    # are asserted here.
    "liner_notes": "",
    "master_release": [True, None],  # original release: [true, null]
}

EVENT_HEADER = {
    "v": 1,
    "type": "CREATE_RELEASE_BUNDLE",
    "author_pubkey": "PUB_K1_REPLACE_ME",
    "created_at": 1758390021,
    "parents": [],
}

SOURCE_LINKS = ["https://en.wikipedia.org/wiki/The_Beatles_(album)"]


# --------------------------------------------------------------------------
# Builders (key order follows the seed example)
# --------------------------------------------------------------------------


def city(name):
    lat, long = CITIES[name]
    return {"city_id": sid("city", name), "city_name": name, "city_lat": lat, "city_long": long}


def role(name):
    return {"role_id": sid("role", name), "role_name": name}


def person(name, roles):
    return {
        "person_id": sid("person", name),
        "person_name": name,
        "person_roles": [role(r) for r in roles],
        "person_city": city(PERSON_CITY),
    }


def people(entries):
    return [person(name, roles) for name, roles in entries]


def label(name, altnames, parents, cities):
    if isinstance(parents, list):
        parents = [sid(kind, ref) for kind, ref in parents]
    return {
        "label_id": sid("label", name),
        "label_name": name,
        "label_altnames": altnames,
        "label_parents": parents,
        "label_city": [city(c) for c in cities],
    }


def group(members):
    return {
        "group_id": sid("group", GROUP_NAME),
        "group_name": GROUP_NAME,
        "group_altnames": GROUP_ALTNAMES,
        "members": people(members),
    }


def track(title, credit):
    seed = SEED_TRACKS.get(title)
    if seed is not None:
        listen_link = seed["listen_link"]
        songwriters = seed["songwriters"]
        members = seed["members"]
        guests = seed["guests"]
    else:
        listen_link = []
        songwriters = SONGWRITERS_BY_CREDIT[credit]
        members = [(name, []) for name in BEATLES]
        guests = []
    return {
        "track_id": sid("track", title),
        "title": title,
        "listen_link": list(listen_link),
        "cover_song": [],
        "sampled_songs": [],
        "songwriters": people(songwriters),
        "producers": people(PRODUCERS),
        "groups": [group(members)],
        "guests": people(guests),
    }


def build_event():
    release = dict(RELEASE)
    release["labels"] = [label(*entry) for entry in LABELS]
    release["tracks"] = [track(title, credit) for _, _, title, credit in TRACKLIST]
    tracklist = [
        {"track_id": sid("track", title), "disc_side": side, "track_number": number}
        for side, number, title, _ in TRACKLIST
    ]
    event = dict(EVENT_HEADER)
    event["body"] = {"release": release, "tracklist": tracklist}
    event["proofs"] = {"source_links": list(SOURCE_LINKS)}
    return event


def check(event):
    tracks = event["body"]["release"]["tracks"]
    tracklist = event["body"]["tracklist"]
    assert len(tracks) == len(tracklist) == 30
    assert [t["track_id"] for t in tracks] == [t["track_id"] for t in tracklist]
    assert len({t["track_id"] for t in tracks}) == 30
    assert set(SEED_TRACKS) <= {t["title"] for t in tracks}
    for side in (1, 2, 3, 4):
        numbers = [t["track_number"] for t in tracklist if t["disc_side"] == side]
        assert numbers == list(range(1, len(numbers) + 1)), side
    assert "sig" not in event


def main():
    event = build_event()
    check(event)
    text = json.dumps(event, indent=2, ensure_ascii=False) + "\n"
    OUT.write_text(text, encoding="utf-8")
    compact = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    print(f"wrote {OUT} ({len(text.encode('utf-8'))} bytes; compact {len(compact.encode('utf-8'))} bytes)")


if __name__ == "__main__":
    main()
