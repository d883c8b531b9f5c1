"""The ``monitor`` console script: thin commands over the use-case functions."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import select

from monitor import __version__
from monitor.accounts import ROLES, create_user, generate_password, hash_password
from monitor.config import Settings, load_settings
from monitor.errors import MonitorError
from monitor.runtime import Runtime, open_runtime
from monitor.storage.db import migrate, schema_is_current, transaction
from monitor.storage.tables import User

F = TypeVar("F", bound=Callable[..., Any])
DEMO_DIR = Path(__file__).with_name("demo")


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def handle_errors(func: F) -> F:
    """Turn MonitorError into a one-line message and exit status 1 (no traceback for staff)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MonitorError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _runtime(ctx: click.Context, *, migrated: bool = True) -> Runtime:
    settings: Settings = ctx.obj["settings"]
    runtime = open_runtime(settings)
    ctx.call_on_close(runtime.close)
    if migrated and not schema_is_current(runtime.engine):
        raise click.ClickException("the database is missing or out of date: run `monitor init` first")
    return runtime


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="monitor")
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Public-statement misinformation monitor: collect feeds, flag contradictions, review them."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        ctx.obj = {"settings": load_settings()}
    except Exception as exc:  # pydantic's validation error lists every bad setting
        if ctx.invoked_subcommand == "doctor":  # the doctor reports it as its first check
            ctx.obj = {"settings": None, "settings_error": exc}
            return
        raise click.ClickException(f"invalid settings: {exc}") from exc


# -- database and accounts ------------------------------------------------------------------------------


def initialise(runtime: Runtime) -> str | None:
    """Migrate the database and create the first ``admin``; returns the generated password, if any."""
    migrate(runtime.settings.resolved_database_url)
    with transaction(runtime.factory) as session:
        if session.scalar(select(User.id).where(User.role == "admin")) is not None:
            return None
        password = runtime.settings.admin_password or generate_password()
        create_user(session, "admin", password, role="admin")
    return None if runtime.settings.admin_password else password


@main.command()
@click.pass_context
@handle_errors
def init(ctx: click.Context) -> None:
    """Create or migrate the database (Alembic) and the first admin account."""
    runtime = _runtime(ctx, migrated=False)
    password = initialise(runtime)
    click.echo(f"database ready: {runtime.settings.resolved_database_url}")
    if password:
        click.echo(f"created user 'admin' with password: {password}")
        click.echo("(shown once; change it with `monitor users passwd admin`)")


@main.group()
def users() -> None:
    """Manage dashboard accounts."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="reviewer", show_default=True)
@click.option("--password", help="Default: generated and printed once.")
@click.pass_context
@handle_errors
def users_add(ctx: click.Context, username: str, role: str, password: str | None) -> None:
    """Add an account."""
    generated = password is None
    password = password or generate_password()
    with transaction(_runtime(ctx).factory) as session:
        create_user(session, username, password, role)
    click.echo(f"created {role} {username!r}" + (f" with password: {password}" if generated else ""))


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def users_list(ctx: click.Context, as_json: bool) -> None:
    """List accounts."""
    with _runtime(ctx).factory() as session:
        rows = [{"id": u.id, "username": u.username, "role": u.role, "active": u.active}
                for u in session.scalars(select(User).order_by(User.id))]
    if as_json:
        _echo_json(rows)
    for row in [] if as_json else rows:
        click.echo(f"{row['id']:>4}  {row['username']:<20} {row['role']:<9} {'active' if row['active'] else 'disabled'}")


def _user(session: Any, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise MonitorError(f"no user named {username!r}")
    return user


@users.command("disable")
@click.argument("username")
@click.pass_context
@handle_errors
def users_disable(ctx: click.Context, username: str) -> None:
    """Disable an account (it can no longer log in)."""
    with transaction(_runtime(ctx).factory) as session:
        _user(session, username).active = False
    click.echo(f"disabled {username!r}")


@users.command("passwd")
@click.argument("username")
@click.option("--password", help="Default: generated and printed once.")
@click.pass_context
@handle_errors
def users_passwd(ctx: click.Context, username: str, password: str | None) -> None:
    """Set a new password for an account."""
    generated = password is None
    password = password or generate_password()
    if len(password) < 8:
        raise MonitorError("passwords must have at least 8 characters")
    with transaction(_runtime(ctx).factory) as session:
        _user(session, username).password_hash = hash_password(password)
    click.echo(f"password of {username!r} changed" + (f" to: {password}" if generated else ""))


# -- releases -------------------------------------------------------------------------------------------


@main.group()
def releases() -> None:
    """Official releases the news is checked against."""


@releases.command("add")
@click.argument("path", type=click.Path(allow_dash=True, dir_okay=False, path_type=str))
@click.option("--title", help="Default: the first line of the text.")
@click.option("--url", help="Where the release is published.")
@click.option("--published", help="Publication date, e.g. 2019-12-30.")
@click.option("--language", help="en, vi, ... (default: detected).")
@click.pass_context
@handle_errors
def releases_add(ctx: click.Context, path: str, title: str | None, url: str | None, published: str | None,
                 language: str | None) -> None:
    """Add a release from a text, Markdown or HTML file, or - for standard input."""
    from monitor.pipeline.releases import add_release, parse_published, text_from_document

    if path == "-":
        raw, name = sys.stdin.buffer.read(), None
    else:
        try:
            raw, name = Path(path).read_bytes(), path
        except OSError as exc:
            raise MonitorError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MonitorError(f"{path} is not UTF-8 text (byte {exc.start}); convert it to UTF-8 first") from exc
    with transaction(_runtime(ctx).factory) as session:
        release, created = add_release(session, text_from_document(text, name), title=title, url=url,
                                       published_at=parse_published(published), language=language)
        count = len(release.statements)
        click.echo(f"{'added' if created else 'already stored as'} release {release.id}: {release.title} "
                   f"({count} statements)")


@releases.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def releases_list(ctx: click.Context, as_json: bool) -> None:
    """List releases."""
    from monitor.pipeline.releases import list_releases, release_to_dict

    with _runtime(ctx).factory() as session:
        rows = [release_to_dict(r) for r in list_releases(session)]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        flag = " (retired)" if row["retired"] else ""
        click.echo(f"{row['id']:>4}  [{row['language']}] {row['title']}{flag}  — {row['statements']} statements")


@releases.command("retire")
@click.argument("release_id", type=int)
@click.option("--undo", is_flag=True, help="Match the release again.")
@click.pass_context
@handle_errors
def releases_retire(ctx: click.Context, release_id: int, undo: bool) -> None:
    """Keep a release but stop matching claims against it."""
    from monitor.pipeline.releases import set_retired

    with transaction(_runtime(ctx).factory) as session:
        set_retired(session, release_id, not undo)
    click.echo(f"release {release_id} {'active again' if undo else 'retired'}")


# -- feeds ----------------------------------------------------------------------------------------------


@main.group()
def feeds() -> None:
    """News and official feeds."""


@feeds.command("add")
@click.argument("url")
@click.option("--official", is_flag=True, help="Items of this feed are official releases.")
@click.option("--interval", type=click.IntRange(min=1), help="Minutes between fetches.")
@click.option("--name", help="Display name (default: the feed's title).")
@click.option("--full-text", is_flag=True, help="Fetch each new item's web page and keep the article text.")
@click.pass_context
@handle_errors
def feeds_add(ctx: click.Context, url: str, official: bool, interval: int | None, name: str | None,
              full_text: bool) -> None:
    """Add a feed to collect."""
    from monitor.pipeline.feeds import add_feed

    runtime = _runtime(ctx)
    with transaction(runtime.factory) as session:
        feed = add_feed(session, url, name=name, kind="official" if official else "news",
                        interval_minutes=interval or runtime.settings.feed_default_interval,
                        allow_files=runtime.settings.fetch_allow_files, full_text=full_text)
        click.echo(f"added {feed.kind} feed {feed.id}: {feed.url}" + (" (full text)" if full_text else ""))


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def feeds_list(ctx: click.Context, as_json: bool) -> None:
    """List feeds with their health."""
    from monitor.pipeline.feeds import feed_to_dict, item_counts, list_feeds

    with _runtime(ctx).factory() as session:
        counts = item_counts(session)
        rows = [feed_to_dict(f, items=counts.get(f.id, 0)) for f in list_feeds(session)]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        status = row["status"]
        if status == "disabled":
            status = f"disabled ({row['disabled_reason'] or 'paused'})"
        elif status == "error":
            status = f"error x{row['consecutive_failures']}: {row['last_error']}"
        elif status == "warning":
            status = f"warning: {'; '.join(row['warnings'])}"  # type: ignore[arg-type]
        click.echo(f"{row['id']:>4}  {row['kind']:<8} every {row['interval_minutes']} min  {row['name']}  "
                   f"<{row['url']}>  {row['items']} items; last fetch: {row['last_fetched_at'] or 'never'}; "
                   f"next: {row['next_fetch_at'] or 'now'}; {status}")


@feeds.command("remove")
@click.argument("feed_id", type=int)
@click.pass_context
@handle_errors
def feeds_remove(ctx: click.Context, feed_id: int) -> None:
    """Remove a feed and its items."""
    from monitor.pipeline.feeds import remove_feed

    with transaction(_runtime(ctx).factory) as session:
        feed = remove_feed(session, feed_id)
    click.echo(f"removed feed {feed_id}: {feed.url}")


@feeds.command("enable")
@click.argument("feed_id", type=int)
@click.pass_context
@handle_errors
def feeds_enable(ctx: click.Context, feed_id: int) -> None:
    """Resume a paused or automatically disabled feed (clears its failure count)."""
    from monitor.pipeline.feeds import set_enabled

    with transaction(_runtime(ctx).factory) as session:
        set_enabled(session, feed_id, True)
    click.echo(f"feed {feed_id} enabled")


@feeds.command("disable")
@click.argument("feed_id", type=int)
@click.pass_context
@handle_errors
def feeds_disable(ctx: click.Context, feed_id: int) -> None:
    """Pause a feed."""
    from monitor.pipeline.feeds import set_enabled

    with transaction(_runtime(ctx).factory) as session:
        set_enabled(session, feed_id, False)
    click.echo(f"feed {feed_id} paused")


feeds.add_command(click.Command("pause", callback=feeds_disable.callback, params=feeds_disable.params,
                                help="Pause a feed (same as disable)."))
feeds.add_command(click.Command("resume", callback=feeds_enable.callback, params=feeds_enable.params,
                                help="Resume a paused or automatically disabled feed (same as enable)."))


@feeds.command("import-opml")
@click.argument("path", type=click.Path(allow_dash=True, dir_okay=False, path_type=str))
@click.option("--interval", type=click.IntRange(min=1), help="Minutes between fetches of the added feeds.")
@click.pass_context
@handle_errors
def feeds_import_opml(ctx: click.Context, path: str, interval: int | None) -> None:
    """Add the feeds listed in an OPML file (or - for standard input); URLs already present are skipped."""
    from monitor.pipeline.feeds import import_opml

    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise MonitorError(f"cannot read {path}: {exc.strerror}") from exc
    runtime = _runtime(ctx)
    with transaction(runtime.factory) as session:
        report = import_opml(session, data, interval_minutes=interval or runtime.settings.feed_default_interval)
    click.echo(f"added {len(report.added)} feeds, skipped {len(report.skipped)} already present, "
               f"{len(report.invalid)} invalid")
    for problem in report.invalid:
        click.echo(f"  invalid: {problem}")


@feeds.command("export-opml")
@click.argument("path", required=False, type=click.Path(allow_dash=True, dir_okay=False, path_type=str))
@click.pass_context
@handle_errors
def feeds_export_opml(ctx: click.Context, path: str | None) -> None:
    """Write every feed as OPML 2.0 to PATH (default: standard output)."""
    from monitor.pipeline.feeds import export_opml, list_feeds

    with _runtime(ctx).factory() as session:
        data = export_opml(list_feeds(session))
    if path in (None, "-"):
        click.echo(data.decode("utf-8"), nl=False)
        return
    try:
        Path(path).write_bytes(data)  # type: ignore[arg-type]
    except OSError as exc:
        raise MonitorError(f"cannot write {path}: {exc.strerror}") from exc
    click.echo(f"wrote {data.count(b'<outline ')} feeds to {path}")


# -- collection and checking ----------------------------------------------------------------------------


def _print_refresh(results: list[Any]) -> None:
    for r in results:
        line = f"feed {r.feed_id} ({r.feed_name}): new {r.new}, updated {r.updated}, unchanged {r.unchanged}"
        if r.duplicates:
            line += f", duplicates {r.duplicates}"
        if r.sightings:
            line += f" ({r.sightings} also carried by another feed)"
        if r.warnings:
            line += f", warnings: {'; '.join(r.warnings)}"
        click.echo(line + (f", error: {r.error}" if r.error else ", error: none"))


@main.command()
@click.option("--feed", "feed_id", type=int, help="Only this feed (default: every enabled feed).")
@click.pass_context
@handle_errors
def fetch(ctx: click.Context, feed_id: int | None) -> None:
    """One collection round now; prints per feed: new, updated, unchanged, error."""
    from monitor.pipeline.collect import collect_round
    from monitor.pipeline.feeds import get_feed, list_feeds

    runtime = _runtime(ctx)
    with runtime.factory() as session:
        ids = [get_feed(session, feed_id).id] if feed_id else [f.id for f in list_feeds(session) if f.enabled]
    results = collect_round(runtime, ids)
    if not results:
        click.echo("no enabled feeds")
    _print_refresh(results)  # exit status 0: the round ran; each feed's outcome is printed and recorded


@main.command()
@click.pass_context
@handle_errors
def check(ctx: click.Context) -> None:
    """Check every item not yet checked; prints how many claims were checked and flagged."""
    from monitor.pipeline.collect import check_round

    result = check_round(_runtime(ctx))
    click.echo(f"checked {result.claims} claims in {result.items} items: {result.matches} matches, "
               f"{result.flagged} flagged as contradictions")


# -- matches --------------------------------------------------------------------------------------------


@main.group()
def matches() -> None:
    """Matches between news claims and official statements."""


@matches.command("list")
@click.option("--status", type=click.Choice(["new", "confirmed", "dismissed", "escalated", "resolved"]))
@click.option("--label", type=click.Choice(["contradicts", "supports", "discusses"]))
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of match objects.")
@click.pass_context
@handle_errors
def matches_list(ctx: click.Context, status: str | None, label: str | None, limit: int | None,
                 as_json: bool) -> None:
    """List matches, most confident first."""
    from monitor.queries import MatchFilter, list_matches, match_to_dict

    with _runtime(ctx).factory() as session:
        rows = [match_to_dict(m) for m in list_matches(session, MatchFilter(status=status, label=label),
                                                        limit=limit)]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['id']:>5}  {row['label']:<11} {row['score']:.2f}  {row['status']:<9} "
                   f"[{row['item']['feed']}] {row['claim']}")
        for reason in row["reasons"]:
            click.echo(f"         - {reason['kind']}: {reason['text']}")


@matches.command("review")
@click.argument("match_id", type=int)
@click.argument("action", type=click.Choice(["confirm", "dismiss", "escalate", "resolve", "reopen", "comment"]))
@click.option("--note", help="Why (a dismiss reason, a comment).")
@click.option("--user", "username", default="admin", show_default=True, help="Recorded as the reviewer.")
@click.pass_context
@handle_errors
def matches_review(ctx: click.Context, match_id: int, action: str, note: str | None, username: str) -> None:
    """Confirm, dismiss, escalate, resolve, reopen or comment on a match (recorded in the audit log)."""
    from monitor.pipeline.review import review_match

    with transaction(_runtime(ctx).factory) as session:
        event = review_match(session, match_id, _user(session, username), action, note)
    click.echo(f"match {match_id}: {event.from_status} -> {event.to_status}")


# -- long-running processes -----------------------------------------------------------------------------


def serve_dashboard(runtime: Runtime, host: str, port: int, *, on_ready: Callable[[str], None]) -> None:
    """Serve the dashboard with waitress (a production WSGI server) until interrupted."""
    from waitress.server import create_server

    from dashboard import create_app

    server = create_server(create_app(runtime.settings), host=host, port=port,
                           threads=runtime.settings.dashboard_threads, ident="statement-monitor")
    bound_host = f"[{host}]" if ":" in host else host
    on_ready(f"http://{bound_host}:{server.effective_port}/")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _announce(url: str) -> None:
    click.echo(f"dashboard: {url}")


@main.command()
@click.option("--host", help="Default: MONITOR_DASHBOARD_HOST (127.0.0.1).")
@click.option("--port", type=int, help="Default: MONITOR_DASHBOARD_PORT (8000).")
@click.pass_context
@handle_errors
def dashboard(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the dashboard alone (waitress), without the scheduler."""
    runtime = _runtime(ctx)
    serve_dashboard(runtime, host or runtime.settings.dashboard_host, port or runtime.settings.dashboard_port,
                    on_ready=_announce)


@main.command()
@click.pass_context
@handle_errors
def scheduler(ctx: click.Context) -> None:
    """Run the scheduler alone: collect due feeds and check new items until Ctrl-C."""
    from monitor.scheduler import run_scheduler

    runtime = _runtime(ctx)
    click.echo(f"scheduler running: one job per feed, synced with the feeds table every "
               f"{runtime.settings.scheduler_tick_seconds} s; Ctrl-C stops (running jobs finish first)")
    run_scheduler(runtime)


def run_all(runtime: Runtime, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Scheduler (background thread, outside the web workers) and dashboard in one process.

    The scheduler first takes the scheduler lock in its own thread, so the dashboard serves at once even
    while another scheduler on the same database holds the lock.
    """
    import threading

    from monitor.scheduler import run_scheduler

    stop = threading.Event()
    started: list[Any] = []
    starter = threading.Thread(target=lambda: started.append(run_scheduler(runtime, stop, blocking=False)),
                               name="scheduler-start", daemon=True)
    starter.start()
    try:
        serve_dashboard(runtime, host, port, on_ready=on_ready)
    finally:
        click.echo("stopping: letting the current round finish ...")
        stop.set()
        starter.join()
        for sched in started:
            if sched is not None and sched.running:
                sched.shutdown(wait=True)


@main.command()
@click.option("--host", help="Default: MONITOR_DASHBOARD_HOST (127.0.0.1).")
@click.option("--port", type=int, help="Default: MONITOR_DASHBOARD_PORT (8000).")
@click.pass_context
@handle_errors
def run(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the scheduler and the dashboard together until Ctrl-C."""
    runtime = _runtime(ctx)
    run_all(runtime, host or runtime.settings.dashboard_host, port or runtime.settings.dashboard_port, _announce)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--no-serve", is_flag=True, help="Set up and check the demo data, then exit.")
@click.pass_context
@handle_errors
def demo(ctx: click.Context, host: str, port: int, no_serve: bool) -> None:
    """Demo mode: database, demo release and demo news feed, one round, then scheduler + dashboard."""
    from monitor.pipeline.collect import check_round, collect_round
    from monitor.pipeline.feeds import add_feed
    from monitor.pipeline.releases import add_release, text_from_document
    from monitor.storage.tables import Feed

    base: Settings = ctx.obj["settings"]
    settings = base.model_copy(update={"fetch_allow_files": True, "scheduler_tick_seconds":
                                       min(base.scheduler_tick_seconds, 60)})
    ctx.obj["settings"] = settings
    runtime = _runtime(ctx, migrated=False)
    password = initialise(runtime)
    feed_url = (DEMO_DIR / "news.xml").resolve().as_uri()
    with transaction(runtime.factory) as session:
        for name in ("release_en.md", "release_vi.md"):
            text = (DEMO_DIR / name).read_text(encoding="utf-8")
            add_release(session, text_from_document(text, name), published_at=None, source="demo",
                        url=None)
        if session.scalar(select(Feed.id).where(Feed.url == feed_url)) is None:
            add_feed(session, feed_url, name="Demo Daily News", interval_minutes=5, allow_files=True)
    _print_refresh(collect_round(runtime))
    result = check_round(runtime)
    click.echo(f"checked {result.claims} claims: {result.flagged} flagged as contradictions")

    def ready(url: str) -> None:
        click.echo(f"\nThe monitor is running. Dashboard: {url}")
        if password:
            click.echo(f"Log in as 'admin' with password: {password}  (shown once)")
        elif settings.admin_password:
            click.echo("Log in as 'admin' with the password in MONITOR_ADMIN_PASSWORD.")
        else:
            click.echo("Log in as 'admin' with the password printed when the database was created, "
                       "or set a new one: monitor users passwd admin")
        click.echo("Press Ctrl-C to stop.")

    if no_serve:
        if password:
            click.echo(f"created user 'admin' with password: {password}")
        return
    run_all(runtime, host, port, ready)


@main.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("../shared/data"), show_default=True, help="Folder with fnc1/, sick/, emergent/.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Default: the bundled model file.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--sample", type=click.IntRange(min=50), default=None,
              help="Train and evaluate on a random sample of about N pairs per data set (a quick smoke run).")
@click.option("--with-feedback", is_flag=True,
              help="Retrain with reviewer feedback: register a candidate in the model registry and promote it "
                   "only if it is not worse (default data: MONITOR_TRAINING_DATA_DIR; --out is ignored).")
@click.pass_context
@handle_errors
def train(ctx: click.Context, data_dir: Path, out: Path | None, seed: int, sample: int | None,
          with_feedback: bool) -> None:
    """Train the stance classifier from the public data sets and write the model and its card."""
    if with_feedback:
        from monitor.pipeline.retrain import retrain

        if ctx.get_parameter_source("data_dir") is click.core.ParameterSource.COMMANDLINE:
            ctx.obj["settings"] = ctx.obj["settings"].model_copy(update={"training_data_dir": data_dir})
        _echo_json(retrain(_runtime(ctx), with_feedback=True, seed=seed).to_dict())
        return
    from models.training import DEFAULT_ARTIFACT, train as train_model

    if not (data_dir / "fnc1").is_dir():
        raise click.ClickException(f"training data not found: {data_dir} has no fnc1/ folder (use --data)")
    with StageBars() as bars:
        metrics = train_model(data_dir, out or DEFAULT_ARTIFACT, seed=seed, progress=bars, sample=sample)
    _echo_json(metrics)


class StageBars:
    """Progress bars on stderr for a job reported as ``(stage, done, total)``: one bar per stage, in order."""

    def __init__(self) -> None:
        self._stage: str | None = None
        self._bar: Any = None
        self._done = 0

    def __enter__(self) -> "StageBars":
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self._close()
            self._stage, self._done = stage, 0
            self._bar = click.progressbar(length=max(total, 1), label=f"{stage:<11}", file=sys.stderr,
                                          show_pos=True, show_eta=True)
            self._bar.__enter__()
        if done > self._done:
            self._bar.update(done - self._done)
            self._done = done


# -- model registry and alerts (issue 6) ------------------------------------------------------------------


@main.group()
def models() -> None:
    """The model registry: trained versions, their metrics and promotion decisions."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Versions with metrics, plus live precision.")
@click.pass_context
@handle_errors
def models_list(ctx: click.Context, as_json: bool) -> None:
    """List model versions, newest first (the active one is marked)."""
    from monitor.pipeline.feedback import live_precision
    from monitor.pipeline.registry import list_versions, version_to_dict

    with _runtime(ctx).factory() as session:
        rows = [version_to_dict(v) for v in list_versions(session)]
        precision = live_precision(session)
    by_version = {p["key"]: p for p in precision["model_version"]}
    for row in rows:
        row["metrics"] = {**(row["metrics"] or {}), "live_precision": by_version.get(row["version"])}
    if as_json:
        _echo_json({"versions": rows, "live_precision": precision})
        return
    if not rows:
        click.echo("no registered versions yet: the bundled model serves (retrain with `monitor train "
                   "--with-feedback`)")
    for row in rows:
        mark = "*" if row["status"] == "active" else " "
        live = row["metrics"]["live_precision"]
        live_text = f"; live precision {live['precision']}" if live and live["precision"] is not None else ""
        decision = (row["decision"] or "").splitlines()[0] if row["decision"] else ""
        click.echo(f"{mark} {row['version']:<36} {row['status']:<9} {row['created_at'][:16]}{live_text}")
        if decision:
            click.echo(f"    {decision}")


@models.command("rollback")
@click.argument("version")
@click.pass_context
@handle_errors
def models_rollback(ctx: click.Context, version: str) -> None:
    """Make a previously active VERSION the active model again."""
    from monitor.pipeline.registry import rollback

    with transaction(_runtime(ctx).factory) as session:
        rollback(session, version, user="cli")
    click.echo(f"{version} is the active model (processes pick it up within a minute)")


@models.command("show")
@click.argument("version", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the card as stored.")
@click.pass_context
@handle_errors
def models_show(ctx: click.Context, version: str | None, as_json: bool) -> None:
    """Show the model card of VERSION from the registry, or of the model in service (the registry's active
    version, else the configured or bundled model)."""
    from models.evaluation import format_card

    card, path, where = _model_card(ctx, version)
    if as_json:
        _echo_json(card)
        return
    click.echo(format_card(card, path))
    click.echo(where)


def _model_card(ctx: click.Context, version: str | None) -> tuple[dict[str, Any], Path | None, str]:
    """(card, model file, where it came from) of a registry VERSION or of the model in service."""
    from models.model import DEFAULT_MODEL_PATH, card_path
    from monitor.pipeline.registry import active_version, get_version

    settings: Settings = ctx.obj["settings"]
    if version is not None:
        with _runtime(ctx).factory() as session:
            row = get_version(session, version)
            return (dict(row.card or {}), Path(row.path),
                    f"registry: {row.status}, file {row.path} (SHA-256 {row.sha256})")
    # the default SQLite file is not created just to find it has no registry
    if settings.database_url or (settings.data_dir / "monitor.sqlite3").is_file():
        try:
            runtime = open_runtime(settings)
            ctx.call_on_close(runtime.close)
            if schema_is_current(runtime.engine):
                with runtime.factory() as session:
                    row = active_version(session)
                    if row is not None:
                        return (dict(row.card or {}), Path(row.path),
                                f"registry: active, file {row.path} (SHA-256 {row.sha256})")
        except Exception as exc:  # an unreachable database: the configured model is what would serve
            logging.getLogger(__name__).warning("model registry not readable (%s); showing the configured model",
                                                exc)
    path = Path(settings.model_path) if settings.model_path else DEFAULT_MODEL_PATH
    card_file = card_path(path)
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MonitorError(f"cannot read the model card {card_file}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise MonitorError(f"the model card {card_file} is not valid JSON: {exc}") from exc
    return card, path, f"model file: {path} ({'bundled' if path == DEFAULT_MODEL_PATH else 'MONITOR_MODEL_PATH'})"


# -- evaluation (issue 4) ----------------------------------------------------------------------------------


@main.group()
def evaluate() -> None:
    """Score the stance classifier on labelled pairs and write its predictions."""


def _evaluation_model(path: Path | None) -> Any:
    from models import load_model

    try:
        return load_model(path)
    except (OSError, ValueError) as exc:
        raise MonitorError(f"cannot load the classifier: {exc}") from exc


def _evaluation(read: Callable[[], Any], predictions: Path | None, source: str) -> Any:
    """Read the input (plain one-line errors) and insist on --predictions when it carries no labels."""
    from models.evaluation import EvaluationError

    try:
        data = read()
    except EvaluationError as exc:
        raise MonitorError(str(exc)) from exc
    if not data.labelled and predictions is None:
        raise MonitorError(f"{source} has no labels, so there is nothing to score: pass --predictions FILE "
                           "to write the model's predictions")
    return data


def _write_predictions(write: Callable[[], None]) -> None:
    from models.evaluation import EvaluationError

    try:
        write()
    except EvaluationError as exc:
        raise MonitorError(str(exc)) from exc


def _report(metrics: dict[str, Any] | None, n: int, speed: float, predictions: Path | None, as_json: bool,
            source: str) -> None:
    from models.evaluation import format_report

    if metrics is None:  # unlabelled input: predictions only
        if as_json:
            _echo_json({"labelled": False, "n": n, "predictions": str(predictions), "pairs_per_second": speed})
            return
        click.echo(f"{source} has no labels: wrote {n} predictions to {predictions} (no metrics)")
        click.echo(f"classified {n} pairs at {speed:g} pairs/s", err=True)
        return
    if as_json:
        extra = {"predictions": str(predictions)} if predictions else {}
        _echo_json({**metrics, "pairs_per_second": speed, **extra})
        return
    click.echo(format_report(metrics))
    if predictions:
        click.echo(f"wrote {n} predictions to {predictions}", err=True)
    click.echo(f"classified {n} pairs at {speed:g} pairs/s", err=True)


_PREDICTIONS = click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path),
                            help="Write one prediction per input row, in input order (required without labels).")
_MODEL = click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
                      help="Stance model (.skops; default: the bundled model).")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@evaluate.command("fnc")
@click.option("--bodies", type=click.Path(path_type=Path), required=True,
              help="FNC-1 bodies CSV (Body ID, articleBody), plain or .gz.")
@click.option("--stances", type=click.Path(path_type=Path), required=True,
              help="FNC-1 stances CSV (Headline, Body ID[, Stance]), plain or .gz.")
@_JSON
@_PREDICTIONS
@_MODEL
@handle_errors
def evaluate_fnc(bodies: Path, stances: Path, as_json: bool, predictions: Path | None,
                 model_path: Path | None) -> None:
    """FNC-1 score, accuracy, per-class P/R/F1, macro-F1 and confusion matrix on FNC-1 CSV files."""
    from models.evaluation import MODEL_TO_FNC, evaluate_fnc as score, predict, read_fnc, write_fnc_predictions

    data = _evaluation(lambda: read_fnc(bodies, stances), predictions, str(stances))
    model = _evaluation_model(model_path)
    labels, _, speed = predict(model, [(r.headline, r.body) for r in data.rows])
    if predictions is not None:
        _write_predictions(lambda: write_fnc_predictions(predictions, data.rows, labels))
    metrics = score([r.stance for r in data.rows], [MODEL_TO_FNC[lbl] for lbl in labels]) if data.labelled else None
    _report(metrics, len(labels), speed, predictions, as_json, str(stances))


@evaluate.command("pairs")
@click.argument("path", type=click.Path(path_type=Path))
@_JSON
@_PREDICTIONS
@_MODEL
@handle_errors
def evaluate_pairs(path: Path, as_json: bool, predictions: Path | None, model_path: Path | None) -> None:
    """Metrics on JSONL lines {"official": ..., "claim": ..., "label": contradicts|supports|discusses|unrelated},
    plus precision, recall and F1 of contradicts against the rest."""
    from models.evaluation import evaluate_pairs as score, predict, read_pairs, write_pairs_predictions

    data = _evaluation(lambda: read_pairs(path), predictions, str(path))
    model = _evaluation_model(model_path)
    labels, scores, speed = predict(model, [(r.claim, r.official) for r in data.rows])
    if predictions is not None:
        _write_predictions(lambda: write_pairs_predictions(predictions, data.rows, labels, scores))
    metrics = score([r.label for r in data.rows], labels) if data.labelled else None
    _report(metrics, len(labels), speed, predictions, as_json, str(path))


@main.group()
def alerts() -> None:
    """Alert rules (email or signed webhook), delivery and the daily digest."""


@alerts.command("add")
@click.option("--name", required=True)
@click.option("--channel", type=click.Choice(["email", "webhook"]), required=True)
@click.option("--target", required=True, help="Email addresses (comma separated) or the webhook URL.")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.8, show_default=True)
@click.option("--release", "release_ids", type=int, multiple=True, help="Watched release id (repeat; default all).")
@click.option("--feed", "feed_ids", type=int, multiple=True, help="Watched outlet (feed) id (repeat; default all).")
@click.option("--window", "window_minutes", type=click.IntRange(min=1), default=24 * 60, show_default=True,
              help="Minutes in which one story gives one alert.")
@click.option("--max-per-hour", type=click.IntRange(min=1), default=20, show_default=True)
@click.pass_context
@handle_errors
def alerts_add(ctx: click.Context, name: str, channel: str, target: str, min_score: float,
               release_ids: tuple[int, ...], feed_ids: tuple[int, ...], window_minutes: int,
               max_per_hour: int) -> None:
    """Add an alert rule (a webhook's signing secret is printed once)."""
    from monitor.alerts.rules import create_rule

    runtime = _runtime(ctx)
    with transaction(runtime.factory) as session:
        rule = create_rule(session, name=name, channel=channel, target=target,
                           allow_hosts=runtime.settings.fetch_allow_hosts, release_ids=list(release_ids),
                           feed_ids=list(feed_ids), min_score=min_score, window_minutes=window_minutes,
                           max_per_hour=max_per_hour)
        click.echo(f"added alert rule {rule.id}: {rule.name} ({rule.channel} to {rule.target})")
        if rule.secret:
            click.echo(f"webhook signing secret (HMAC-SHA256): {rule.secret}")


@alerts.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def alerts_list(ctx: click.Context, as_json: bool) -> None:
    """List alert rules."""
    from monitor.alerts.rules import list_rules, rule_to_dict

    with _runtime(ctx).factory() as session:
        rows = [rule_to_dict(r) for r in list_rules(session)]
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']:>4}  {'on ' if r['enabled'] else 'off'} {r['channel']:<7} {r['name']} -> {r['target']} "
                   f"(min {r['min_score']:.2f}, window {r['window_minutes']} min, max {r['max_per_hour']}/h)")


@alerts.command("remove")
@click.argument("rule_id", type=int)
@click.pass_context
@handle_errors
def alerts_remove(ctx: click.Context, rule_id: int) -> None:
    """Remove an alert rule and its delivery log."""
    from monitor.alerts.rules import delete_rule

    with transaction(_runtime(ctx).factory) as session:
        delete_rule(session, rule_id)
    click.echo(f"removed alert rule {rule_id}")


@alerts.command("log")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def alerts_log(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The delivery log, newest first."""
    from monitor.alerts.rules import delivery_to_dict, list_deliveries

    with _runtime(ctx).factory() as session:
        rows = [delivery_to_dict(d) for d in list_deliveries(session, limit=limit)]
    if as_json:
        _echo_json(rows)
        return
    for d in rows:
        error = f"  ({d['last_error']})" if d["last_error"] else ""
        click.echo(f"{d['id']:>5}  rule {d['rule_id']:<4} {d['status']:<10} x{d['attempts']} {d['channel']:<7} "
                   f"{d['target']}{error}")


@alerts.command("deliver")
@click.pass_context
@handle_errors
def alerts_deliver(ctx: click.Context) -> None:
    """Send the alerts that are due now (what the scheduler does every minute)."""
    from monitor.alerts.deliver import deliver_pending

    report = deliver_pending(_runtime(ctx))
    click.echo(f"sent {report.sent}, retrying {report.retrying}, failed {report.failed}")


@alerts.command("digest")
@click.pass_context
@handle_errors
def alerts_digest(ctx: click.Context) -> None:
    """Queue and send today's digest emails now (once per user and day)."""
    from monitor.alerts.deliver import deliver_pending
    from monitor.alerts.digest import queue_digests

    runtime = _runtime(ctx)
    queued = queue_digests(runtime)
    report = deliver_pending(runtime)
    click.echo(f"queued {queued} digests; sent {report.sent}, retrying {report.retrying}, failed {report.failed}")


# -- production mode (issue 7): Celery workers and the installation check ------------------------------------


@main.command()
@click.option("--concurrency", "-c", type=int, help="Task processes (default: MONITOR_WORKER_CONCURRENCY).")
@click.option("--pool", type=click.Choice(["prefork", "solo", "threads"]), default="prefork", show_default=True)
@click.option("--hostname", "-n", help="Worker name (default: celery@<host>).")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.pass_context
@handle_errors
def worker(ctx: click.Context, concurrency: int | None, pool: str, hostname: str | None, loglevel: str) -> None:
    """Run a Celery worker (MONITOR_EXECUTOR=celery): fetch and check tasks from MONITOR_BROKER_URL."""
    from monitor.celery_app import start_worker

    runtime = _runtime(ctx)  # refuse to start on a missing or outdated schema
    settings = runtime.settings
    runtime.close()
    start_worker(settings, concurrency=concurrency, pool=pool, loglevel=loglevel, hostname=hostname)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per check.")
@click.option("--worker-timeout", type=float, default=2.0, show_default=True,
              help="Seconds to wait for Celery workers to answer.")
@click.option("--skip-model", is_flag=True, help="Do not load the classifier (faster).")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, worker_timeout: float, skip_model: bool) -> None:
    """Check settings, data dir, database, migrations, broker, workers, scheduler and model; exit 1 on FAIL."""
    from monitor.doctor import exit_status, render, run_checks

    checks = run_checks(ctx.obj.get("settings"), ctx.obj.get("settings_error"), worker_timeout=worker_timeout,
                        check_model_file=not skip_model)
    if as_json:
        _echo_json({"ok": exit_status(checks) == 0, "checks": [c.as_dict() for c in checks]})
    else:
        render(checks, click.echo)
    ctx.exit(exit_status(checks))


if __name__ == "__main__":  # pragma: no cover
    main()
