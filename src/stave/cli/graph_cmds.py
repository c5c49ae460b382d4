"""``stave project`` (rebuild, digest, reconcile) and ``stave query`` (the music graph).

Every command that reads the projection first brings it up to date with the log, as any
follower does; progress goes to stderr, results to stdout (``--json`` for scripts).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.table import Table

from stave.cli.log_cmds import open_log
from stave.cli.store_cmds import open_replicated, progress_bar
from stave.config import Settings
from stave.db import Database
from stave.errors import StaveError

if TYPE_CHECKING:
    from stave import graph

GRAPH = "graph"  # stave.graph.GRAPH; the graph package is imported inside each command, only when used

project_app = typer.Typer(help="Projections of the log: rebuild, digest, reconcile.", no_args_is_help=True)
query_app = typer.Typer(help="Query the music graph (brought up to date with the log first).", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The projection's name (only 'graph' exists).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
IdArg = Annotated[str, typer.Argument(help="A node id (a merged duplicate's id works too).")]


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def open_projector(settings: Settings, *, catch_up: bool = True) -> Iterator[graph.Projector]:
    """The graph projection the settings describe, brought up to date with the log (progress on stderr)."""
    from stave import graph

    store = open_replicated(settings)
    database = graph.open_graph_database(settings.graph_url)
    try:
        projector = graph.Projector(database, open_log(settings), store, settings.graph.rules())
        if catch_up:
            _with_progress("projecting", projector.catch_up)
        yield projector
    except StaveError as exc:
        _fail(str(exc))
    finally:
        database.close()
        store.close()


def _with_progress(label: str, run: Callable[..., int]) -> int:
    with progress_bar() as progress:
        task = progress.add_task(label, total=None)
        return run(progress=lambda done, total: progress.update(task, completed=done, total=total))


def _check_name(name: str) -> None:
    if name != GRAPH:
        _fail(f"unknown projection {name!r}; known: {GRAPH}")


def _print_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


# --- project ----------------------------------------------------------------------------------


@project_app.command("rebuild")
def project_rebuild(ctx: typer.Context, name: NameArg = GRAPH) -> None:
    """Empty the projection and replay the whole log into it; print the entries applied and the digest."""
    from stave import graph

    _check_name(name)
    with open_projector(_settings(ctx), catch_up=False) as projector:
        applied = _with_progress("rebuilding", projector.rebuild)
        typer.echo(f"rebuilt {name}: {applied} entries, digest {graph.state_digest(projector.database).digest}")


@project_app.command("follow")
def project_follow(
    ctx: typer.Context,
    name: NameArg = GRAPH,
    interval: Annotated[
        float | None,
        typer.Option("--interval", help="Seconds between rounds while up to date (graph.follow_interval)."),
    ] = None,
) -> None:
    """Follow the log into the projection until stopped (SIGTERM or Ctrl-C): its own process, for
    deployments where the API servers do not follow (graph.follow = false)."""
    import signal
    import threading

    from stave.graph.projector import FOLLOW_ROUND

    _check_name(name)
    settings = _settings(ctx)
    pause = settings.graph.follow_interval if interval is None else interval
    if not 0 < pause <= 3600:
        _fail(f"--interval must be more than 0 and at most 3600 seconds, got {pause:g}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open_projector(settings, catch_up=False) as projector:
        try:
            while not stop.is_set():
                applied = projector.catch_up(max_entries=FOLLOW_ROUND)
                if applied:
                    seq, _ = projector.position()
                    typer.echo(f"applied {applied} entries, at seq {seq}", err=True)
                if applied < FOLLOW_ROUND:
                    stop.wait(pause)
        except KeyboardInterrupt:
            pass
        seq, _ = projector.position()
        typer.echo(f"stopped at seq {seq}")


@project_app.command("digest")
def project_digest(
    ctx: typer.Context,
    name: NameArg = GRAPH,
    tables: Annotated[bool, typer.Option("--tables", help="Also print each table's hash and row count.")] = False,
) -> None:
    """Print the state digest: a hash over the projection's canonical contents (equal on every replica)."""
    from stave import graph

    _check_name(name)
    with open_projector(_settings(ctx)) as projector:
        digest = graph.state_digest(projector.database)
        typer.echo(digest.digest)
        if tables:
            for table, (table_hash, rows) in digest.tables.items():
                typer.echo(f"{table} {table_hash} {rows}")


@project_app.command("reconcile")
def project_reconcile(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Rebuild into a scratch database and compare with the live projection. Exit 1 on any difference."""
    from stave import graph

    settings = _settings(ctx)
    with open_projector(settings) as projector:
        settings.data_path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=settings.data_path, prefix="reconcile-") as scratch:
            differences = graph.reconcile(projector, f"sqlite:///{scratch}/graph.db")
    if as_json:
        _print_json([d.__dict__ for d in differences])
    elif not differences:
        typer.echo("the live projection equals a fresh rebuild")
    else:
        for difference in differences:
            typer.echo(
                f"{difference.table}: {difference.only_live} rows only in the live projection, "
                f"{difference.only_fresh} only in the rebuild"
            )
            for row in difference.examples_live:
                typer.echo(f"  live:    {row}")
            for row in difference.examples_fresh:
                typer.echo(f"  rebuild: {row}")
    if differences:
        raise typer.Exit(1)


# --- query --------------------------------------------------------------------------------------


def _run(
    ctx: typer.Context, what: str, ask: Callable[[Database], Any], as_json: bool, show: Callable[[Any], None]
) -> None:
    with open_projector(_settings(ctx)) as projector:
        result = ask(projector.database)
    if result is None:
        _fail(what, 1)
    if as_json:
        _print_json(result)
    else:
        show(result)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    Console().print(table)


def _header(view: dict[str, Any]) -> None:
    typer.echo(f"{view['kind']} {view['name'] or '(no name)'}  {view['id']}")
    if view.get("altnames"):
        typer.echo(f"  also: {', '.join(view['altnames'])}")
    if view.get("merged"):
        typer.echo(f"  merged into it: {', '.join(view['merged'])}")


def _show_release(view: dict[str, Any]) -> None:
    _header(view)
    typer.echo(f"  date: {view.get('date') or '?'}  formats: {', '.join(view.get('formats', []))}")
    typer.echo(f"  labels: {', '.join(label['name'] or label['id'] for label in view['labels'])}")
    rows = []
    for track in view["tracklist"]:
        credits = "; ".join(
            f"{c['person']['name']} ({c['as']}{': ' + ', '.join(c['roles']) if c['roles'] else ''})"
            for c in track["credits"]
        )
        rows.append([track["side"], track["number"], track["title"], credits])
    _table("tracklist", ["side", "no", "title", "credits"], rows)


def _show_discography(view: dict[str, Any]) -> None:
    _header(view)
    rows = [
        [r.get("date"), r["name"], t["side"], t["number"], t["title"], ", ".join(t["as"])]
        for r in view["releases"]
        for t in r["tracks"]
    ]
    rows += [[None, "(on no release)", None, None, t["title"], ", ".join(t["as"])] for t in view["other_tracks"]]
    _table("discography", ["date", "release", "side", "no", "track", "as"], rows)


def _show_label(view: dict[str, Any]) -> None:
    _header(view)
    if view["sub_labels"]:
        typer.echo("  sub-labels: " + ", ".join(f"{s['name']} (depth {s['depth']})" for s in view["sub_labels"]))
    _table(
        "releases",
        ["date", "release", "id", "label"],
        [[r["date"], r["name"], r["id"], r["label"]] for r in view["releases"]],
    )


def _show_members(view: dict[str, Any]) -> None:
    _header(view)
    rows = [
        [
            m["name"],
            m["id"],
            ", ".join(m["roles"]),
            "; ".join(f"{p['since'] or '?'} – {p['until'] or ''}" for p in m["periods"]),
        ]
        for m in view["members"]
    ]
    _table(f"members{' at ' + view['at'] if view['at'] else ''}", ["name", "id", "roles", "periods"], rows)


def _show_collaborators(view: dict[str, Any]) -> None:
    _header(view)
    _table("collaborators", ["hops", "name", "id"], [[c["hops"], c["name"], c["id"]] for c in view["collaborators"]])


def _show_search(hits: list[dict[str, Any]]) -> None:
    _table(
        "matches",
        ["kind", "name", "id", "matched"],
        [[h["kind"], h["name"], h["id"], ", ".join(h["matched"])] for h in hits],
    )


def _show_claims(items: list[dict[str, Any]]) -> None:
    rows = [
        [
            c["claim_id"][:16],
            c["kind"],
            f"{c['subject']['kind']} {c['subject']['id'][:16]}",
            c["status"],
            f"{c['votes']['yes']}/{c['votes']['no']}/{c['votes']['abstain']}",
            c.get("closes_at"),
        ]
        for c in items
    ]
    _table("claims", ["claim", "kind", "subject", "status", "yes/no/abstain", "closes at (log time)"], rows)


def _show_history(items: list[dict[str, Any]]) -> None:
    rows = [[h["seq"], h["type"], ", ".join(h["how"]), h["event_id"], h["proof"]] for h in items]
    _table("history", ["seq", "type", "how", "event", "proof"], rows)


@query_app.command("release")
def query_release(ctx: typer.Context, release_id: IdArg, as_json: JsonOpt = False) -> None:
    """A release with its labels and full tracklist with credits."""
    from stave import graph

    _run(ctx, f"no release with id {release_id}", lambda db: graph.release(db, release_id), as_json, _show_release)


@query_app.command("discography")
def query_discography(ctx: typer.Context, node_id: IdArg, as_json: JsonOpt = False) -> None:
    """A person's or group's releases and tracks, with their roles."""
    from stave import graph

    _run(
        ctx,
        f"no person or group with id {node_id}",
        lambda db: graph.discography(db, node_id),
        as_json,
        _show_discography,
    )


@query_app.command("label")
def query_label(ctx: typer.Context, label_id: IdArg, as_json: JsonOpt = False) -> None:
    """A label's releases, including those of its sub-labels."""
    from stave import graph

    _run(ctx, f"no label with id {label_id}", lambda db: graph.label_releases(db, label_id), as_json, _show_label)


@query_app.command("members")
def query_members(
    ctx: typer.Context,
    group_id: IdArg,
    at: Annotated[str | None, typer.Option("--at", help="A date YYYY, YYYY-MM or YYYY-MM-DD.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A group's members (at a date with --at; unknown dates count as current)."""
    from stave import graph

    _run(ctx, f"no group with id {group_id}", lambda db: graph.members(db, group_id, at), as_json, _show_members)


@query_app.command("collaborators")
def query_collaborators(
    ctx: typer.Context,
    person_id: IdArg,
    depth: Annotated[int, typer.Option("--depth", min=1, max=3, help="Hops: 1 direct, 2 their collaborators too.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """People sharing a track or a group with a person, up to --depth hops."""
    from stave import graph

    _run(
        ctx,
        f"no person with id {person_id}",
        lambda db: graph.collaborators(db, person_id, depth),
        as_json,
        _show_collaborators,
    )


@query_app.command("search")
def query_search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="Words to find in names and alternative names.")],
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only nodes of this kind (person, group, release…).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Nodes by name or alternative name, accent- and case-insensitive."""
    from stave import graph

    _run(ctx, "", lambda db: graph.search(db, text, limit=limit, kind=kind), as_json, _show_search)


@query_app.command("claims")
def query_claims(
    ctx: typer.Context,
    status: Annotated[str, typer.Option("--status", help="open, accepted, rejected, withdrawn or all.")] = "open",
    as_json: JsonOpt = False,
) -> None:
    """Proposals with their live vote counts (open ones by default)."""
    from stave import graph

    if status not in ("open", "accepted", "rejected", "withdrawn", "all"):
        _fail(f"--status must be open, accepted, rejected, withdrawn or all, got {status!r}")
    rules = _settings(ctx).graph.rules()
    _run(
        ctx,
        "",
        lambda db: graph.claims(db, None if status == "all" else status, rules=rules),
        as_json,
        _show_claims,
    )


@query_app.command("history")
def query_history(ctx: typer.Context, node_id: IdArg, as_json: JsonOpt = False) -> None:
    """Every event that touched a node, in log order, with its proof link."""
    from stave import graph

    _run(ctx, "", lambda db: graph.history(db, node_id), as_json, _show_history)


@query_app.command("rewards")
def query_rewards(
    ctx: typer.Context,
    recipient: Annotated[str | None, typer.Option("--recipient", help="Only this public key.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Reward totals per contributor and unit, from valid distributions."""
    from stave import graph

    rows = ["recipient", "unit", "total", "distributions"]
    _run(
        ctx,
        "",
        lambda db: graph.reward_totals(db, recipient),
        as_json,
        lambda items: _table("rewards", rows, [[item[key] for key in rows] for item in items]),
    )


@query_app.command("rejections")
def query_rejections(
    ctx: typer.Context,
    event_id: Annotated[str | None, typer.Option("--event", help="Only this event's refusals.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Events (or parts of them) the projection refused, with the rule and why."""
    from stave import graph

    rows = ["seq", "event_id", "rule", "detail"]
    _run(
        ctx,
        "",
        lambda db: graph.rejections(db, event_id),
        as_json,
        lambda items: _table("rejections", rows, [[item[key] for key in rows] for item in items]),
    )
