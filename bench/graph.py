"""The music graph: rebuild throughput and query latency at 100,000 release bundles, beside raw SQLite.

Goals (issue 6: the music graph), each against a baseline measured in the same run:
- rebuilding the graph (a fresh SQLite graph database, ``Projector.catch_up()`` over the whole
  log) at >= 40% of the rate of a raw insert of the same rows: every row of every graph table,
  read back after the rebuild and inserted with ``sqlite3``'s ``executemany`` into an empty
  database with the same schema (its indexes, and the FTS5 table and triggers of the names),
  with stave's pragmas (WAL, ``synchronous=FULL``), **one transaction per table**. Its rate is
  expressed as the log's events divided by the raw insert's seconds; the raw insert runs twice
  and the faster round counts (the stricter baseline), once if a round takes over a minute;
- at p99, each single-entity query (``node``, ``release``, ``discography``, ``label_releases``,
  ``members`` at a date, ``history``) and ``search`` within 100x, and ``collaborators`` two hops
  deep within 1,000x, of a primary-key lookup on ``graph_nodes`` through the same kind of
  connection (a pooled SQLAlchemy connection, one Core ``SELECT … WHERE id = ?``). Each query
  runs ``STAVE_BENCH_GRAPH_CALLS`` (300) times on random ids, each call beside one lookup of a
  random node, alternating which goes first; the projection is caught up before any is timed.

Also reported, without a goal (the issue sets none): the open claims with their vote counts
(``claims``), and the rebuild split into reading the log, reading the events and applying them.

The dataset is generated, deterministic (seeded) and cached as JSON Lines under
``~/.cache/stave/bench/`` keyed by the generator's parameters: ``STAVE_BENCH_GRAPH_RELEASES``
(100,000 by default) CREATE_RELEASE_BUNDLE events shaped like seed 000's White Album but smaller
(1-5 tracks; songwriters, producers, a group with its members, guests, labels with parents and
cities, covers and samples of earlier tracks, accented names and alternative names), drawn from
shared pools with skewed popularity so that people collaborate across releases: releases/5 groups
(each created by a CREATE_GROUP with its founding members, some with an ADD_MEMBER or a
REMOVE_MEMBER later), session players, producers, writers and releases/50 labels in a three-level
hierarchy. Then releases/10 ADD_CLAIM on earlier nodes and three times as many VOTEs, interleaved
in log order with the bundles. Events are signed in a process pool.

The log is real and filled once, untimed: ``Log.append_ids`` in batches of 10,000 on SQLite.
The events' bytes come by default from memory (``MemoryEvents``: the same ids and canonical
bytes a store returns after verifying them), because what is measured is the projection, and
because filling a real store is slow here: writing 16,850 events into two local directories
took 30 s even unsynced (about 5 minutes at 100,000 releases), on top of a rebuild that already
takes most of the time budget. ``STAVE_BENCH_GRAPH_STORE=local`` fills a real store instead
(``LocalStore.put_many`` into two directories, unsynced since they are only read afterwards,
and ``StoreIndex.record_stored``, which is what ``ReplicatedStore.put_events`` does for new
events) and the projection reads through a ``ReplicatedStore``, paying for verified reads as in
service; at 10,000 releases those reads were 11% of the rebuild.

The p99 of a ~0.2 ms primary-key lookup on a shared 2-core machine is mostly scheduling noise
(a preempted call), so the p50 ratios are printed and recorded in the results beside the p99
ones the goals use.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sqlite3
import statistics
import tempfile
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import bindparam, select

from bench.harness import Record, goal_record, print_records, upsert_summary, write_results
from stave import graph
from stave.db import Database, open_database
from stave.errors import StorageError
from stave.event import PrivateKey, sign_event
from stave.graph import tables
from stave.graph.ids import derived_id
from stave.graph.projector import Projector, open_graph_database
from stave.log.note import Signer
from stave.log.sequencer import Log, LogEntry
from stave.store import BlobInfo, BlobKey, ReplicatedStore, StoreIndex
from stave.store.index import CopyRecord
from stave.store.local import LocalStore

RELEASES = int(os.environ.get("STAVE_BENCH_GRAPH_RELEASES", "100000"))
CALLS = int(os.environ.get("STAVE_BENCH_GRAPH_CALLS", "300"))
SOURCE = os.environ.get("STAVE_BENCH_GRAPH_STORE", "memory")  # or "local"
SOURCES = {
    "memory": "a real log (SQLite) and the events' bytes in memory",
    "local": "a real log (SQLite) and store (two local directories, ReplicatedStore reads)",
}
SEED = 6
GENERATOR_VERSION = 1  # bump when the generator's output changes: it is part of the cache key
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stave" / "bench"
LOG_BATCH = 10_000  # ids per append_ids while filling the log (untimed)
STORE_BATCH = 5_000  # events per put_many while filling the store (untimed)
RAW_ROUNDS = 2
RAW_ROUND_LIMIT = 60.0  # seconds: one raw round this long is enough
FETCH = 20_000  # rows read at a time from the rebuilt graph for the raw insert (untimed)
T0 = 1_700_000_000  # created_at of the first group event
QUERIES = ("node", "release", "discography", "label_releases", "members", "history", "search", "claims")
SINGLE_ENTITY = ("node", "release", "discography", "label_releases", "members", "history")


# --- the dataset --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    releases: int
    seed: int = SEED
    version: int = GENERATOR_VERSION

    @property
    def groups(self) -> int:
        return max(10, self.releases // 5)

    @property
    def labels(self) -> int:
        return max(10, self.releases // 50)

    @property
    def sessions(self) -> int:
        return max(10, self.releases // 10)

    @property
    def producers(self) -> int:
        return max(5, self.releases // 50)

    @property
    def writers(self) -> int:
        return max(5, self.releases // 25)

    @property
    def claims(self) -> int:
        return max(1, self.releases // 10)

    @property
    def votes(self) -> int:
        return 3 * self.claims

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


# fmt: off
FIRST = (
    "José", "Zoë", "Björn", "Søren", "Chloé", "Jürgen", "Małgorzata", "Ángel", "Françoise", "Ólafur", "Renée",
    "Antonín", "Inés", "Grégoire", "Þóra", "Mário", "Łukasz", "Noël", "Céline", "Dagný", "Agnès", "Íñigo",
    "Rüdiger", "Hélène", "Sinéad", "Bartłomiej", "Émile", "Tomás", "Zsófia", "Örjan", "John", "Paul", "Mary",
    "Ann", "Lisa", "Mark", "Anna", "Peter", "Sarah", "David", "Laura", "James", "Emma", "Michael", "Julia",
    "Robert", "Nina", "Thomas", "Kate", "Daniel", "Maria", "Chris", "Eva", "Frank", "Alice", "Henry", "Rosa",
    "Oscar", "Ella", "Victor", "Iris", "Hugo", "Lena", "Felix", "Clara", "Simon", "Ruth", "Leon", "Marta", "Ivan",
    "Olga", "Karl", "Yuki", "Kenji", "Amara", "Kwame", "Aisha", "Ravi", "Priya", "Chen", "Mei", "Omar", "Leila",
    "Diego", "Lucía",
)
SYLLABLES = (
    "ber", "mar", "son", "sen", "lin", "dah", "ros", "kar", "vel", "ton", "ham", "mon", "gar", "ris", "lan", "dor",
    "fel", "wick", "ston", "ley", "man", "row", "ell", "bach", "hof", "stein", "berg", "quist", "rud", "mann", "vik",
    "gaard", "holm",
)
ACCENTS = {"a": "áàäå", "e": "éèë", "o": "óöø", "u": "úü", "i": "í", "n": "ñ", "c": "ç", "s": "š", "z": "ž"}
WORDS = (
    "Blue", "Night", "River", "Golden", "Electric", "Silent", "Broken", "Velvet", "Midnight", "Summer", "Winter",
    "Crystal", "Paper", "Stone", "Fire", "Ocean", "Echo", "Shadow", "Neon", "Wild", "Lonely", "Bright", "Dream",
    "Heart", "Glass", "Silver", "Morning", "Distant", "Falling", "Café", "Señor", "Déjà", "Vu", "Über", "Fiancée",
    "Naïve", "Rosé", "Résumé", "Mañana", "Jalapeño", "Smörgåsbord", "Façade", "Piñata", "Doppelgänger", "Garden",
    "Highway", "Letters", "Lights", "Machine", "Mirror", "Season", "Signal", "Streets", "Thunder", "Waves",
    "Wolves", "Years",
)
CITIES = (
    ("London", 51.507, -0.128), ("Liverpool", 53.408, -2.992), ("Los Angeles", 34.098, -118.327),
    ("New York", 40.713, -74.006), ("Nashville", 36.163, -86.781), ("Detroit", 42.331, -83.046),
    ("Reykjavík", 64.146, -21.942), ("São Paulo", -23.551, -46.633), ("Montréal", 45.502, -73.567),
    ("Zürich", 47.377, 8.542), ("Malmö", 55.605, 13.004), ("København", 55.676, 12.568),
    ("Kraków", 50.065, 19.945), ("Bogotá", 4.711, -74.072), ("Düsseldorf", 51.227, 6.773),
    ("Göteborg", 57.709, 11.975), ("Köln", 50.938, 6.960), ("Lagos", 6.524, 3.379), ("Tokyo", 35.676, 139.650),
    ("Kingston", 17.971, -76.793), ("Berlin", 52.520, 13.405), ("Paris", 48.857, 2.352),
    ("Manchester", 53.481, -2.243), ("Chicago", 41.878, -87.630), ("Seattle", 47.606, -122.332),
    ("Melbourne", -37.814, 144.963), ("Toronto", 43.653, -79.383), ("Stockholm", 59.329, 18.069),
    ("Havana", 23.114, -82.366), ("Bamako", 12.639, -8.003), ("Seoul", 37.566, 126.978),
    ("Mumbai", 19.076, 72.878), ("Buenos Aires", -34.604, -58.382), ("Cork", 51.898, -8.475),
)
INSTRUMENTS = (
    "Lead Vocals", "Backing Vocals", "Electric Guitar", "Acoustic Guitar", "Bass Guitar", "Drum Kit", "Percussion",
    "Piano", "Organ", "Synthesizer", "Saxophone", "Trumpet", "Violin", "Cello", "Harmonica", "Handclaps",
    "Lead Guitar", "Mellotron", "Flute", "Banjo",
)
FORMATS = ("LP", "CD", "Digital", "Cassette", '7"')
# fmt: on


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _key(name: str) -> PrivateKey:
    return PrivateKey(hashlib.sha256(f"bench graph key {name}".encode()).digest())


def _zipf(count: int, offset: float) -> list[float]:
    """Cumulative weights 1/(rank + offset): a few popular items, a long tail."""
    total, out = 0.0, []
    for rank in range(count):
        total += 1.0 / (rank + offset)
        out.append(total)
    return out


def _accented(rng: random.Random, text: str, chance: float) -> str:
    letters = list(text)
    for index, char in enumerate(letters):
        if char in ACCENTS and rng.random() < chance:
            letters[index] = rng.choice(ACCENTS[char])
    return "".join(letters)


def _surname(rng: random.Random) -> str:
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3))))
    return _accented(rng, word, 0.15).capitalize()


def _title(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    altnames: tuple[str, ...]
    city: int
    instruments: tuple[str, ...]


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    altnames: tuple[str, ...]
    formed: int
    city: int
    founders: tuple[int, ...]  # person indexes
    joiner: int | None
    leaver: int | None  # a founder who leaves
    label: int
    producer: int


@dataclass(frozen=True)
class Label:
    id: str
    name: str
    altnames: tuple[str, ...]
    parent: int | None
    city: int


@dataclass(frozen=True)
class Pools:
    people: list[Person]
    groups: list[Group]
    labels: list[Label]
    sessions: range
    producers: range
    writers: range
    group_weights: list[float]
    label_weights: list[float]
    producer_weights: list[float]
    writer_weights: list[float]


def _person(rng: random.Random, index: int) -> Person:
    first, last = rng.choice(FIRST), _surname(rng)
    name = f"{first} {last}"
    altnames: tuple[str, ...] = ()
    roll = rng.random()
    if roll < 0.08:
        altnames = (_plain(name),) if _plain(name) != name else (f"{first[0]}. {last}",)
    elif roll < 0.15:
        altnames = (f"{rng.choice(WORDS)} {last}",)  # a stage name
    instruments = tuple(rng.sample(INSTRUMENTS, rng.choice((1, 1, 1, 2))))
    return Person(_hex(f"bench person {index}"), name, altnames, rng.randrange(len(CITIES)), instruments)


def _plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@lru_cache(maxsize=2)
def pools(params: Params) -> Pools:
    """People, groups and labels shared by every release (deterministic from the parameters)."""
    rng = random.Random(params.seed)
    people: list[Person] = []
    labels: list[Label] = []
    majors, mids = max(1, params.labels // 20), max(1, params.labels // 4)
    for index in range(params.labels):
        parent = None if index < majors else rng.randrange(majors) if index < mids else rng.randrange(mids)
        kind = rng.choice(("Records", "Music", "Sound", "Discos", "Schallplatten"))
        base = f"{_accented(rng, _surname(rng), 0.1)} {kind}"
        altnames = (base.rsplit(" ", 1)[0],) if rng.random() < 0.5 else ()
        labels.append(Label(_hex(f"bench label {index}"), base, altnames, parent, rng.randrange(len(CITIES))))
    label_weights = _zipf(params.labels, 20)
    producers_start = 0
    producers = range(producers_start, producers_start + params.producers)
    writers = range(producers.stop, producers.stop + params.writers)
    sessions = range(writers.stop, writers.stop + params.sessions)
    people = [_person(rng, index) for index in range(sessions.stop)]
    producer_weights, writer_weights = _zipf(params.producers, 50), _zipf(params.writers, 20)
    groups: list[Group] = []
    for index in range(params.groups):
        size = rng.choices((2, 3, 4, 5), (25, 30, 30, 15))[0]
        founders = tuple(range(len(people), len(people) + size))
        people += [_person(rng, len(people)) for _ in range(size)]
        joiner = None
        if rng.random() < 0.3:
            joiner = len(people)
            people.append(_person(rng, joiner))
        leaver = rng.choice(founders) if rng.random() < 0.15 else None
        the = "The " if rng.random() < 0.4 else ""
        name = _accented(rng, f"{the}{_title(rng, rng.choice((1, 2, 2)))}", 0.05)
        if rng.random() < 0.2:
            name = f"{name} {rng.choice(('Trio', 'Quartet', 'Band', 'Orchestra', 'Collective', 'Ensemble'))}"
        altnames = (name[4:],) if the and rng.random() < 0.5 else ((_plain(name),) if _plain(name) != name else ())
        groups.append(
            Group(
                _hex(f"bench group {index}"),
                name,
                altnames,
                rng.randrange(1955, 2016),
                rng.randrange(len(CITIES)),
                founders,
                joiner,
                leaver,
                _pick(rng, label_weights),
                _pick(rng, producer_weights),
            )
        )
    return Pools(
        people,
        groups,
        labels,
        sessions,
        producers,
        writers,
        _zipf(params.groups, 20),
        label_weights,
        producer_weights,
        writer_weights,
    )


def _pick(rng: random.Random, cumulative: list[float]) -> int:
    return rng.choices(range(len(cumulative)), cum_weights=cumulative)[0]


def _role(name: str) -> dict[str, str]:
    return {"role_id": _hex(f"bench role {name}"), "role_name": name}


def _city(index: int, prefix: str = "city_") -> dict[str, Any]:
    name, lat, lon = CITIES[index]
    if prefix == "city_":
        return {"city_id": _hex(f"bench city {name}"), "city_name": name, "city_lat": lat, "city_long": lon}
    return {"city_id": _hex(f"bench city {name}"), "name": name, "lat": lat, "lon": lon}


def _credit(rng: random.Random, person: Person, roles: Sequence[str]) -> dict[str, Any]:
    credit: dict[str, Any] = {"person_id": person.id, "person_name": person.name}
    if person.altnames and rng.random() < 0.5:
        credit["person_altnames"] = list(person.altnames)
    credit["person_roles"] = [_role(role) for role in roles]
    if rng.random() < 0.2:
        credit["person_city"] = _city(person.city)
    return credit


def _label(label: Label, pool: Pools) -> dict[str, Any]:
    parent = pool.labels[label.parent].id if label.parent is not None else ""
    return {
        "label_id": label.id,
        "label_name": label.name,
        "label_altnames": list(label.altnames) if len(label.altnames) != 1 else label.altnames[0],
        "label_parents": [parent] if parent else "",
        "label_city": [_city(label.city)],
    }


def track_id(release: int, track: int) -> str:
    return _hex(f"bench track {release}.{track}")


def bundle(params: Params, index: int) -> dict[str, Any]:
    """Release ``index``: a White-Album-shaped bundle by one group, a few tracks, credits from the pools."""
    pool = pools(params)
    rng = random.Random(params.seed * 1_000_003 + index)
    group = pool.groups[_pick(rng, pool.group_weights)]
    members = [pool.people[i] for i in group.founders if i != group.leaver or rng.random() < 0.5]
    if group.joiner is not None and rng.random() < 0.6:
        members.append(pool.people[group.joiner])
    producers = [
        pool.people[pool.producers[group.producer if rng.random() < 0.7 else _pick(rng, pool.producer_weights)]]
    ]
    if rng.random() < 0.15:
        producers.append(pool.people[pool.producers[_pick(rng, pool.producer_weights)]])
    labels = [pool.labels[group.label if rng.random() < 0.85 else _pick(rng, pool.label_weights)]]
    if rng.random() < 0.2:
        extra = pool.labels[_pick(rng, pool.label_weights)]
        if extra.id != labels[0].id:
            labels.append(extra)
    year = min(2025, group.formed + rng.randrange(0, 30))
    date = str(year) if rng.random() < 0.3 else f"{year}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    tracks = []
    for number in range(rng.choices((1, 2, 3, 4, 5), (20, 30, 25, 15, 10))[0]):
        writers = [
            _credit(rng, person, rng.choice((["Songwriter"], ["Lyrics", "Songwriter"])))
            for person in rng.sample(members, min(len(members), rng.choice((1, 1, 1, 2))))
        ]
        if rng.random() < 0.25:
            writer = pool.people[pool.writers[_pick(rng, pool.writer_weights)]]
            writers.append(_credit(rng, writer, [rng.choice(("Composer", "Lyrics", "Songwriter"))]))
        track: dict[str, Any] = {
            "track_id": track_id(index, number),
            "title": _accented(rng, _title(rng, rng.choice((1, 2, 3))), 0.03),
            "listen_link": [f"https://listen.example.org/track/{index}/{number}"],
            "cover_song": [],
            "sampled_songs": [],
            "songwriters": writers,
            "producers": [_credit(rng, person, ["Producer"]) for person in producers],
            "groups": [
                {
                    "group_id": group.id,
                    "group_name": group.name,
                    "group_altnames": list(group.altnames),
                    "members": [_credit(rng, person, person.instruments) for person in members],
                }
            ],
            "guests": [],
        }
        if index and rng.random() < 0.2:
            session = pool.people[pool.sessions[rng.randrange(len(pool.sessions))]]
            track["guests"].append(_credit(rng, session, [rng.choice(INSTRUMENTS)]))
        if index and rng.random() < 0.03:
            earlier = rng.randrange(index)
            track["cover_song"].append({"track_id": track_id(earlier, 0), "title": "an earlier song"})
        if index and rng.random() < 0.02:
            earlier = rng.randrange(index)
            track["sampled_songs"].append({"track_id": track_id(earlier, 0)})
        tracks.append(track)
    release: dict[str, Any] = {
        "release_name": _accented(rng, _title(rng, rng.choice((1, 2, 2, 3))), 0.05),
        "release_altnames": [],
        "release_date": date,
        "release_format": rng.sample(FORMATS, rng.choice((1, 1, 2))),
        "liner_notes": "",
        "master_release": [True, None],
        "labels": [_label(label, pool) for label in labels],
        "tracks": tracks,
    }
    if rng.random() < 0.1:
        release["release_altnames"] = [_plain(release["release_name"]).upper()]
    tracklist = [
        {"track_id": track["track_id"], "disc_side": 1, "track_number": number + 1}
        for number, track in enumerate(tracks)
    ]
    return _template("CREATE_RELEASE_BUNDLE", bundle_time(index), {"release": release, "tracklist": tracklist})


def bundle_time(index: int) -> int:
    return T0 + 1_000_000 + 10 * index


def _template(event_type: str, created_at: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"v": 1, "type": event_type, "created_at": created_at, "parents": [], "body": body}


def group_events(params: Params, index: int) -> list[dict[str, Any]]:
    """CREATE_GROUP with the founders, then an ADD_MEMBER and a REMOVE_MEMBER where the group has them."""
    pool = pools(params)
    group = pool.groups[index]
    at = T0 + 10 * index
    body = {
        "group": {
            "group_id": group.id,
            "name": group.name,
            "altnames": list(group.altnames),
            "formed_date": str(group.formed),
            "origin_city": _city(group.city, ""),
        },
        "founding_members": [
            {"person_id": pool.people[i].id, "name": pool.people[i].name, "roles": list(pool.people[i].instruments)}
            for i in group.founders
        ],
    }
    events = [_template("CREATE_GROUP", at, body)]
    if group.joiner is not None:
        joiner = pool.people[group.joiner]
        member = {"person_id": joiner.id, "name": joiner.name, "roles": list(joiner.instruments)}
        joined = f"{group.formed + 1 + index % 9}-{1 + index % 12:02d}-01"
        events.append(_template("ADD_MEMBER", at + 1, {"group_id": group.id, "member": member, "joined_date": joined}))
    if group.leaver is not None:
        left = f"{group.formed + 2 + index % 11}-{1 + index % 12:02d}-15"
        body = {"group_id": group.id, "person_id": pool.people[group.leaver].id, "left_date": left}
        events.append(_template("REMOVE_MEMBER", at + 2, body))
    return events


@dataclass(frozen=True)
class Signed:
    id: str
    type: str
    author: str
    created_at: int
    data: bytes


def _sign_all(items: Sequence[tuple[dict[str, Any], str]]) -> list[Signed]:
    out = []
    keys: dict[str, PrivateKey] = {}
    for template, key_name in items:
        key = keys.get(key_name) or keys.setdefault(key_name, _key(key_name))
        event = sign_event(template, key)
        out.append(Signed(event.id, event.type.name, event.author, event.created_at, event.canonical_bytes()))
    return out


def _sign_groups(params: Params, start: int, stop: int) -> list[Signed]:
    return _sign_all([(t, f"editor {i % 50}") for i in range(start, stop) for t in group_events(params, i)])


def _sign_bundles(params: Params, start: int, stop: int) -> list[Signed]:
    return _sign_all([(bundle(params, i), f"editor {i % 50}") for i in range(start, stop)])


def _in_pool(
    workers: ProcessPoolExecutor, fn: Callable[..., list[Signed]], total: int, *args: Any, parts: int = 64
) -> list[Signed]:
    step = max(1, math.ceil(total / parts))
    starts = list(range(0, total, step))
    results = workers.map(fn, *([arg] * len(starts) for arg in args), starts, [min(s + step, total) for s in starts])
    return [item for part in results for item in part]


def _sign_templates(items: list[tuple[dict[str, Any], str]]) -> list[Signed]:
    return _sign_all(items)


def _templates_in_pool(workers: ProcessPoolExecutor, items: list[tuple[dict[str, Any], str]]) -> list[Signed]:
    step = max(1, math.ceil(len(items) / 32))
    return [
        item
        for part in workers.map(_sign_templates, [items[i : i + step] for i in range(0, len(items), step)])
        for item in part
    ]


def _claims(params: Params, bundles: list[Signed]) -> list[tuple[int, dict[str, Any], str]]:
    """(position among the bundles, template, key): claims on nodes that precede them in the log."""
    pool = pools(params)
    rng = random.Random(params.seed + 1)
    out = []
    first = max(1, params.releases // 10)
    for number in range(params.claims):
        after = first + (number * (params.releases - first)) // params.claims  # after bundle `after - 1`
        release_index = rng.randrange(after)
        shape = rng.random()
        if shape < 0.35:
            person = pool.people[pool.groups[rng.randrange(len(pool.groups))].founders[0]]
            subject, changes = (
                {"kind": "person", "id": person.id},
                [{"op": "add", "field": "altnames", "value": _plain(person.name) + " Jr."}],
            )
        elif shape < 0.55:
            release_id = derived_id("release", bundles[release_index].id, "$.body.release")
            subject = {"kind": "release", "id": release_id}
            changes = [{"op": "set", "field": "release_date", "value": str(1960 + rng.randrange(60))}]
        elif shape < 0.75:
            subject = {"kind": "track", "id": track_id(release_index, 0)}
            changes = [{"op": "add", "field": "altnames", "value": _title(rng, 2)}]
        elif shape < 0.9:
            group = pool.groups[rng.randrange(len(pool.groups))]
            subject, changes = (
                {"kind": "group", "id": group.id},
                [{"op": "add", "field": "altnames", "value": _plain(group.name).lower()}],
            )
        else:
            label_id = json.loads(bundles[release_index].data)["body"]["release"]["labels"][0]["label_id"]
            subject = {"kind": "label", "id": label_id}
            changes = [{"op": "add", "field": "altnames", "value": _surname(rng) + " Label Group"}]
        body = {"subject": subject, "changes": changes, "sources": [f"https://source.example.org/{number}"]}
        out.append((after, _template("ADD_CLAIM", bundle_time(after - 1) + 3, body), f"claimant {number % 100}"))
    return out


def _votes(params: Params, claims: list[tuple[int, Signed]]) -> list[tuple[int, dict[str, Any], str]]:
    """Votes on earlier claims by voters who did not write them, a few per claim on average."""
    rng = random.Random(params.seed + 2)
    out = []
    for _ in range(params.votes):
        at = rng.randrange(len(claims))
        position, claim = claims[at]
        later = min(params.releases, position + rng.randrange(0, max(1, params.releases // 20)))
        value = rng.choices(("yes", "no", "abstain"), (70, 20, 10))[0]
        body = {"claim_id": claim.id, "vote": value}
        out.append((later, _template("VOTE", bundle_time(later - 1) + 5, body), f"voter {rng.randrange(300)}"))
    return out


def _generate(console: Console, params: Params) -> list[Signed]:
    """Every event in log order: groups, then bundles with the claims and votes interleaved."""
    workers_count = max(1, os.cpu_count() or 1)
    with ProcessPoolExecutor(workers_count) as workers:
        started = time.perf_counter()
        groups = _in_pool(workers, _sign_groups, params.groups, params)
        bundles = _in_pool(workers, _sign_bundles, params.releases, params)
        console.print(
            f"  signed {len(groups):,} group events and {len(bundles):,} bundles"
            f" [{time.perf_counter() - started:.0f} s]"
        )
        claim_plan = _claims(params, bundles)
        claims = _templates_in_pool(workers, [(template, key) for _, template, key in claim_plan])
        vote_plan = _votes(
            params, [(position, claim) for (position, _, _), claim in zip(claim_plan, claims, strict=True)]
        )
        votes = _templates_in_pool(workers, [(template, key) for _, template, key in vote_plan])
        console.print(
            f"  signed {len(claims):,} claims and {len(votes):,} votes [{time.perf_counter() - started:.0f} s]"
        )
    after: dict[int, list[Signed]] = {}
    for (position, _, _), claim in zip(claim_plan, claims, strict=True):
        after.setdefault(position, []).append(claim)
    for (position, _, _), vote in zip(vote_plan, votes, strict=True):
        after.setdefault(position, []).append(vote)
    ordered = list(groups)
    for index, one in enumerate(bundles):
        ordered.append(one)
        ordered += sorted(after.get(index + 1, []), key=lambda s: (s.created_at, s.type != "ADD_CLAIM"))
    return ordered


def dataset(console: Console, params: Params) -> list[Signed]:
    """The events, from the cache when this generator already made them with these parameters."""
    directory = CACHE / f"graph-{params.releases}-{params.key()}"
    events_path, index_path = directory / "events.jsonl", directory / "index.tsv"
    if events_path.exists() and index_path.exists():
        started = time.perf_counter()
        with events_path.open("rb") as data, index_path.open() as index:
            out = []
            for line, row in zip(data, index, strict=True):
                event_id, event_type, author, created_at = row.rstrip("\n").split("\t")
                out.append(Signed(event_id, event_type, author, int(created_at), line.rstrip(b"\n")))
        console.print(
            f"dataset: {len(out):,} events from the cache {directory} (generation skipped)"
            f" [{time.perf_counter() - started:.1f} s]"
        )
        return out
    console.print(f"dataset: generating {params} into {directory}")
    out = _generate(console, params)
    directory.mkdir(parents=True, exist_ok=True)
    temp_events, temp_index = events_path.with_suffix(".tmp"), index_path.with_suffix(".tmp")
    with temp_events.open("wb") as data, temp_index.open("w") as index:
        for one in out:
            data.write(one.data + b"\n")
            index.write(f"{one.id}\t{one.type}\t{one.author}\t{one.created_at}\n")
    temp_events.replace(events_path)
    temp_index.replace(index_path)
    return out


# --- the log and the store ---------------------------------------------------------------------


class TimedLog:
    """The log as the projector sees it, counting the seconds spent reading entries."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.seconds = 0.0

    def entries(self, *, after_seq: int = -1, limit: int = 100) -> list[LogEntry]:
        start = time.perf_counter()
        try:
            return self.log.entries(after_seq=after_seq, limit=limit)
        finally:
            self.seconds += time.perf_counter() - start

    def size(self) -> int:
        return self.log.size()


class MemoryEvents:
    """The events' bytes by id, as a store hands them over once verified (``STAVE_BENCH_GRAPH_STORE=memory``)."""

    def __init__(self, events: Sequence[Signed]) -> None:
        self.data = {event.id: event.data for event in events}

    def get_events(self, event_ids: Sequence[str]) -> Mapping[str, bytes | StorageError]:
        return {event_id: self.data[event_id] for event_id in event_ids}

    def close(self) -> None:
        self.data.clear()


class TimedEvents:
    """The event source as the projector sees it, counting the seconds spent reading events."""

    def __init__(self, store: ReplicatedStore | MemoryEvents) -> None:
        self.store = store
        self.seconds = 0.0

    def get_events(self, event_ids: Sequence[str]) -> Mapping[str, bytes | StorageError]:
        start = time.perf_counter()
        try:
            return self.store.get_events(event_ids)
        finally:
            self.seconds += time.perf_counter() - start


def _fill(
    console: Console, root: Path, events: list[Signed], source: str
) -> tuple[Log, ReplicatedStore | MemoryEvents, dict[str, float]]:
    started = time.perf_counter()
    database = open_database(f"sqlite:///{root}/stave.db")
    log = Log(database, Signer("bench.stave.example/graph", hashlib.sha256(b"bench graph log key").digest()))
    for start in range(0, len(events), LOG_BATCH):
        log.append_ids([(e.id, e.type, e.author, e.created_at) for e in events[start : start + LOG_BATCH]])
    log_seconds = time.perf_counter() - started
    if source == "memory":
        console.print(
            f"log: {len(events):,} events appended in {log_seconds:.1f} s (untimed setup); the events' bytes are"
            " read from memory, not from a store (STAVE_BENCH_GRAPH_STORE=local reads them from one)"
        )
        return log, MemoryEvents(events), {"log_s": log_seconds, "store_s": 0.0}
    backends = [LocalStore(root / "a", name="a", fsync=False), LocalStore(root / "b", name="b", fsync=False)]
    index = StoreIndex(database)
    for start in range(0, len(events), STORE_BATCH):
        chunk = events[start : start + STORE_BATCH]
        items = [
            (BlobKey.event(e.id), e.data, BlobInfo(event_type=e.type, author=e.author, created_at=e.created_at))
            for e in chunk
        ]
        for backend in backends:
            failed = [outcome for outcome in backend.put_many(items) if isinstance(outcome, Exception)]
            if failed:
                raise RuntimeError(f"store {backend.name}: {failed[0]}")
        copies = [CopyRecord(backend.name, "ok") for backend in backends]
        index.record_stored([(key, len(data), info, copies) for key, data, info in items])
    store = ReplicatedStore(backends, StoreIndex(database))
    seconds = {"log_s": log_seconds, "store_s": time.perf_counter() - started - log_seconds}
    console.print(
        f"log and store: {len(events):,} events appended in {seconds['log_s']:.1f} s, stored in two local"
        f" directories in {seconds['store_s']:.1f} s (untimed setup)"
    )
    return log, store, seconds


# --- rebuild and the raw insert ----------------------------------------------------------------


def _graph_tables(path: Path) -> list[str]:
    """The projection's tables in creation order, without the FTS5 index's own shadow tables."""
    with sqlite3.connect(path) as connection:
        names = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'graph%'"
                " AND sql NOT LIKE 'CREATE VIRTUAL%'"
                " ORDER BY rowid"
            )
        ]
    connection.close()
    return [name for name in names if not name.startswith("graph_names_fts")]


def _schema(path: Path) -> list[str]:
    """The DDL of the graph: tables, the FTS5 table, indexes and triggers, as the migration made them."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT sql FROM sqlite_master WHERE name LIKE 'graph%' AND sql IS NOT NULL"
            " AND NOT (type = 'table' AND name LIKE 'graph_names_fts_%')"
            " ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid"
        ).fetchall()
    connection.close()
    return [sql for (sql,) in rows]


def _raw_insert(source: Path, target: Path, schema: list[str], names: list[str]) -> dict[str, Any]:
    """Every row of every graph table into an empty database, one ``executemany`` transaction per table."""
    reader = sqlite3.connect(source)
    writer = sqlite3.connect(target, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
        writer.execute(f"PRAGMA {pragma}")
    for statement in schema:
        writer.execute(statement)
    seconds, rows = 0.0, {}
    for name in names:
        cursor = reader.execute(f"SELECT * FROM {name}")  # noqa: S608 (names from sqlite_master)
        columns = len(cursor.description)
        insert = f"INSERT INTO {name} VALUES ({', '.join('?' * columns)})"  # noqa: S608
        count = 0
        start = time.perf_counter()
        writer.execute("BEGIN IMMEDIATE")
        seconds += time.perf_counter() - start
        while batch := cursor.fetchmany(FETCH):
            start = time.perf_counter()
            writer.executemany(insert, batch)
            seconds += time.perf_counter() - start
            count += len(batch)
        start = time.perf_counter()
        writer.execute("COMMIT")
        seconds += time.perf_counter() - start
        rows[name] = count
    reader.close()
    writer.close()
    return {"seconds": seconds, "rows": rows}


def _row_counts(path: Path, names: list[str]) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        counts = {name: connection.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in names}  # noqa: S608
    connection.close()
    return counts


def _rebuild(
    console: Console, root: Path, log: Log, store: ReplicatedStore | MemoryEvents, events: int
) -> tuple[Database, dict[str, Any]]:
    graph_path = root / "graph.db"
    database = open_graph_database(f"sqlite:///{graph_path}")
    timed_log, timed_events = TimedLog(log), TimedEvents(store)
    projector = Projector(database, timed_log, timed_events)
    marks = {max(1, events * step // 10) for step in range(1, 11)}
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if any(done >= mark > done - projector.batch_size for mark in marks):
            elapsed = time.perf_counter() - started
            console.print(
                f"  rebuild at {done:>9,} / {total:,} entries: {done / elapsed:,.0f} events/s [{elapsed:.0f} s]"
            )

    applied = projector.catch_up(progress=progress)
    seconds = time.perf_counter() - started
    assert applied == events, f"the rebuild applied {applied} of {events} entries"
    names = _graph_tables(graph_path)
    figures: dict[str, Any] = {
        "events": applied,
        "seconds": seconds,
        "events_per_s": applied / seconds,
        "batch_size": projector.batch_size,
        "log_read_s": timed_log.seconds,
        "store_read_s": timed_events.seconds,
        "apply_s": seconds - timed_log.seconds - timed_events.seconds,
        "rows": _row_counts(graph_path, names),
        "bytes": sum(p.stat().st_size for p in root.glob("graph.db*")),
    }
    schema = _schema(graph_path)
    rounds = []
    for number in range(RAW_ROUNDS):
        target = root / f"raw-{number}.db"
        result = _raw_insert(graph_path, target, schema, names)
        assert result["rows"] == figures["rows"], f"the raw insert wrote other rows: {result['rows']}"
        rounds.append(result["seconds"])
        for path in root.glob(f"raw-{number}.db*"):
            path.unlink()
        if result["seconds"] > RAW_ROUND_LIMIT:  # long enough that a second round would not be noise
            break
    figures["raw_seconds_rounds"] = rounds
    figures["raw_seconds"] = min(rounds)
    figures["raw_rows_per_s"] = sum(figures["rows"].values()) / figures["raw_seconds"]
    figures["raw_events_per_s"] = applied / figures["raw_seconds"]
    return database, figures


# --- queries ------------------------------------------------------------------------------------

_PK = select(tables.nodes).where(tables.nodes.c.id == bindparam("id"))


def primary_key_lookup(database: Database, node_id: str) -> Any:
    """The baseline: one node by primary key, through a pooled connection as every query takes one."""
    with database.engine.connect() as connection:
        return connection.execute(_PK, {"id": node_id}).first()


def _ids(database: Database) -> dict[str, list[str]]:
    query = select(tables.nodes.c.id, tables.nodes.c.kind).order_by(tables.nodes.c.id)
    out: dict[str, list[str]] = {}
    with database.engine.connect() as connection:
        for node_id, kind in connection.execute(query):
            out.setdefault(kind, []).append(node_id)
    return out


def _names(database: Database) -> list[str]:
    with database.engine.connect() as connection:
        return list(connection.execute(select(tables.names.c.name).order_by(tables.names.c.name_id)).scalars())


def _search_text(rng: random.Random, name: str) -> str:
    """What someone would type: accents dropped or kept, any case, the last word maybe cut short."""
    text = _plain(name) if rng.random() < 0.6 else name
    text = rng.choice((str.lower, str.upper, str.title, str))(text)
    words = text.split()
    if len(words) > 1 and rng.random() < 0.4 and len(words[-1]) > 3:
        words[-1] = words[-1][: rng.randrange(3, len(words[-1]))]
    return " ".join(words)


def _calls(database: Database, rng: random.Random) -> dict[str, Callable[[], Callable[[], Any]]]:
    """For each query, a maker of one call on fresh random arguments."""
    ids = _ids(database)
    names = _names(database)
    every = [node_id for kind in sorted(ids) for node_id in ids[kind]]
    people, groups = ids.get("person", []), ids.get("group", [])

    def date() -> str:
        year = rng.randrange(1955, 2030)
        return str(year) if rng.random() < 0.5 else f"{year}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"

    def one(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
        return lambda: fn(database, *args, **kwargs)

    return {
        "node": lambda: one(graph.node, rng.choice(every)),
        "release": lambda: one(graph.release, rng.choice(ids["release"])),
        "discography": lambda: one(graph.discography, rng.choice(people if rng.random() < 0.5 else groups)),
        "label_releases": lambda: one(graph.label_releases, rng.choice(ids["label"])),
        "members": lambda: one(graph.members, rng.choice(groups), date()),
        "history": lambda: one(graph.history, rng.choice(every)),
        "search": lambda: one(graph.search, _search_text(rng, rng.choice(names))),
        "claims": lambda: one(graph.claims, "open"),
        "collaborators": lambda: one(graph.collaborators, rng.choice(people), 2),
    }


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _queries(console: Console, database: Database, calls: int) -> dict[str, Any]:
    rng = random.Random(SEED + 3)
    makers = _calls(database, rng)
    every = [node_id for ids in _ids(database).values() for node_id in ids]
    for make in makers.values():  # warm the page cache, the pool and the statement caches
        for _ in range(10):
            make()()
    for _ in range(200):
        primary_key_lookup(database, rng.choice(every))
    figures: dict[str, Any] = {}
    baseline: list[float] = []
    for name, make in makers.items():
        started = time.perf_counter()
        samples, pk_samples, sizes = [], [], []
        for number in range(calls):
            call, node_id = make(), rng.choice(every)
            for which in ("pk", "query") if number % 2 else ("query", "pk"):
                start = time.perf_counter()
                if which == "pk":
                    found = primary_key_lookup(database, node_id)
                    pk_samples.append(time.perf_counter() - start)
                    assert found is not None
                else:
                    result = call()
                    samples.append(time.perf_counter() - start)
                    sizes.append(_size(name, result))
        baseline += pk_samples
        figures[name] = {
            "calls": calls,
            "p50_us": statistics.median(samples) * 1e6,
            "p99_us": _pct(samples, 0.99) * 1e6,
            "max_us": max(samples) * 1e6,
            "pk_p50_us": statistics.median(pk_samples) * 1e6,
            "pk_p99_us": _pct(pk_samples, 0.99) * 1e6,
            "answer_size_p50": statistics.median(sizes),
            "answer_size_p99": _pct([float(s) for s in sizes], 0.99),
            "answer_size_max": max(sizes),
        }
        console.print(
            f"  {name:<15} p50 {figures[name]['p50_us']:>9,.0f} µs  p99 {figures[name]['p99_us']:>9,.0f} µs"
            f"  (PK lookup p99 {figures[name]['pk_p99_us']:,.0f} µs) [{time.perf_counter() - started:.0f} s]"
        )
    pk = figures["pk_lookup"] = {
        "calls": len(baseline),
        "p50_us": statistics.median(baseline) * 1e6,
        "p99_us": _pct(baseline, 0.99) * 1e6,
    }
    for name in makers:
        figures[name]["p99_ratio"] = figures[name]["p99_us"] / pk["p99_us"]
        figures[name]["p50_ratio"] = figures[name]["p50_us"] / pk["p50_us"]
    return figures


def _size(name: str, result: Any) -> int:
    """How big an answer was (what the query had to gather), for the table."""
    if result is None:
        return 0
    if isinstance(result, list):
        return len(result)
    key = {
        "release": "tracklist",
        "discography": "releases",
        "label_releases": "releases",
        "members": "members",
        "collaborators": "collaborators",
    }.get(name)
    return len(result[key]) if key else 1


# --- the run ------------------------------------------------------------------------------------


def run(console: Console, *, releases: int = RELEASES, calls: int = CALLS) -> list[Record]:
    params = Params(releases)
    started = time.perf_counter()
    generated = dataset(console, params)
    # The log keeps one entry per event id: a vote cast twice alike is the same event.
    events = list({event.id: event for event in generated}.values())
    figures: dict[str, Any] = {
        "params": {**asdict(params), "groups": params.groups, "labels": params.labels, "claims": params.claims},
        "events": len(events),
        "duplicates_generated": len(generated) - len(events),
        "event_types": {t: sum(1 for e in events if e.type == t) for t in sorted({e.type for e in events})},
        "event_bytes": sum(len(e.data) for e in events),
        "source": SOURCES[SOURCE],
    }
    with tempfile.TemporaryDirectory(prefix="stave-bench-graph-") as temp:
        root = Path(temp)
        log, store, setup = _fill(console, root, events, SOURCE)
        figures["setup"] = setup
        console.print(f"graph: rebuilding from {len(events):,} log entries into a fresh SQLite graph database")
        database, figures["rebuild"] = _rebuild(console, root, log, store, len(events))
        rebuild = figures["rebuild"]
        console.print(
            f"  rebuild {rebuild['events_per_s']:,.0f} events/s; raw insert of the same"
            f" {sum(rebuild['rows'].values()):,} rows {rebuild['raw_events_per_s']:,.0f} events/s"
            f" ({rebuild['raw_rows_per_s']:,.0f} rows/s)"
        )
        console.print(f"graph: {calls} calls of each query on random ids, each beside a primary-key lookup")
        figures["queries"] = _queries(console, database, calls)
        database.close()
        store.close()
        log.database.close()
    figures["total_s"] = time.perf_counter() - started
    records = _records(figures)
    _print_table(console, figures)
    write_results("graph", figures)
    upsert_summary(records)
    print_records(f"graph goals ({releases:,} releases, {len(events):,} events)", records, console)
    return records


def _records(figures: dict[str, Any]) -> list[Record]:
    rebuild, queries = figures["rebuild"], figures["queries"]
    pk = queries["pk_lookup"]["p99_us"]
    baseline = "primary-key lookup on graph_nodes, same connection kind, p99"
    records = [
        goal_record(
            "graph.rebuild_throughput",
            rebuild["events_per_s"],
            "events/s",
            ">=0.4",
            baseline="raw executemany insert of the same rows (sqlite3, one transaction per table), as events/s",
            baseline_value=rebuild["raw_events_per_s"],
        )
    ]
    for name in (*SINGLE_ENTITY, "search"):
        records.append(goal_record(f"graph.query_{name}_p99", queries[name]["p99_us"], "us", "<=100", baseline, pk))
    records.append(
        goal_record("graph.collaborators_2hop_p99", queries["collaborators"]["p99_us"], "us", "<=1000", baseline, pk)
    )
    return records


def _print_table(console: Console, figures: dict[str, Any]) -> None:
    rebuild, queries = figures["rebuild"], figures["queries"]
    table = Table(title=f"music graph: {figures['events']:,} events ({figures['params']['releases']:,} releases)")
    for column in ("operation", "figure", "baseline", "ratio", "answer size p50 / p99"):
        table.add_column(column)
    table.add_row(
        "rebuild (catch_up, whole log)",
        f"{rebuild['events_per_s']:,.0f} events/s in {rebuild['seconds']:.1f} s",
        f"raw insert {rebuild['raw_events_per_s']:,.0f} events/s in {rebuild['raw_seconds']:.1f} s",
        f"{rebuild['events_per_s'] / rebuild['raw_events_per_s']:.2f}x",
        "-",
    )
    table.add_row(
        "  of which",
        f"log {rebuild['log_read_s']:.1f} s, store reads {rebuild['store_read_s']:.1f} s,"
        f" apply {rebuild['apply_s']:.1f} s",
        f"{sum(rebuild['rows'].values()):,} rows",
        "-",
        "-",
    )
    pk = queries["pk_lookup"]
    table.add_row(
        "primary-key lookup (baseline)", f"p50 {pk['p50_us']:.0f} µs, p99 {pk['p99_us']:.0f} µs", "-", "-", "-"
    )
    for name in (*QUERIES, "collaborators"):
        q = queries[name]
        table.add_row(
            name if name != "collaborators" else "collaborators (2 hops)",
            f"p50 {q['p50_us']:,.0f} µs, p99 {q['p99_us']:,.0f} µs",
            f"PK p50 {pk['p50_us']:.0f} µs, p99 {pk['p99_us']:.0f} µs",
            f"p50 {q['p50_ratio']:.0f}x, p99 {q['p99_ratio']:.0f}x",
            f"{q['answer_size_p50']:g} / {q['answer_size_p99']:g}",
        )
    console.print(table)
    console.print(
        f"events from {figures['source']}; setup (untimed) log {figures['setup']['log_s']:.0f} s,"
        f" store {figures['setup']['store_s']:.0f} s; whole benchmark {figures['total_s']:.0f} s"
    )
