"""The default executor runs the pipeline in-process and needs neither Celery nor Redis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from monitor.executors import CeleryExecutor, InlineExecutor, make_executor
from monitor.runtime import Runtime
from monitor.storage.db import transaction
from monitor.storage.tables import Feed, Item, Match

ROOT = Path(__file__).resolve().parents[1]
RELEASE = "In 2019, the department investigated 27 specialized criminal cases and arrested 121 suspects."


def test_inline_executor_refreshes_then_checks(runtime: Runtime, feed_server, make_rss) -> None:
    from monitor.pipeline.releases import add_release

    urls = [feed_server.serve(f"/f{n}.xml", make_rss([
        {"title": f"Outlet {n}: police investigated 72 specialized criminal cases in 2019",
         "link": f"https://o{n}.example.org/a", "guid": f"a{n}",
         "description": f"<p>Report {n}: the cyber department investigated 72 specialized criminal cases in 2019 "
                        "and arrested 121 suspects.</p>"},
        {"title": f"Outlet {n} weather: sunny and warm", "link": f"https://o{n}.example.org/b", "guid": f"b{n}",
         "description": ""}])) for n in range(2)]
    with transaction(runtime.factory) as session:
        add_release(session, RELEASE, title="r", published_at=None)
        feeds = [Feed(url=u, name=f"f{n}") for n, u in enumerate(urls)]
        session.add_all(feeds)
        session.flush()
        ids = [f.id for f in feeds]
    executor = make_executor(runtime)
    assert isinstance(executor, InlineExecutor)
    done = executor.refresh_feeds(ids + ids)  # a feed named twice is refreshed once
    assert [r.feed_id for r in done.results] == ids and done.new_items == 4
    assert done.checked is not None and done.checked.items == 4
    with runtime.factory() as session:
        assert session.scalar(select(func.count(Item.id)).where(Item.checked_at.is_(None))) == 0
        assert session.scalar(select(func.count(Match.id)).where(Match.label == "contradicts")) >= 1
    again = executor.refresh_feeds(ids)
    assert again.new_items == 0 and again.checked is None
    assert executor.check_items().checked.items == 0


def test_celery_is_chosen_by_setting_without_connecting(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(update={"executor": "celery"})
    executor = make_executor(Runtime(settings=settings, engine=runtime.engine, factory=runtime.factory))
    assert isinstance(executor, CeleryExecutor) and executor._app is None  # nothing made until used


def test_default_mode_never_imports_celery_or_redis() -> None:
    code = ("import sys, monitor.cli, monitor.executors, monitor.locks, monitor.doctor, monitor.scheduler; "
            "bad = [m for m in ('celery', 'redis', 'kombu') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
