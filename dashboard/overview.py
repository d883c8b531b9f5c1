"""``/overview``: new flags today and this week, flags per day by outlet and by release (SVG), the outlets
that most often contradict releases, reviewer precision of the model per week, and the live precision of the
flags (``monitor.pipeline.feedback.live_precision``) per release, per outlet and per model version.

All counting happens in SQL (GROUP BY in ``monitor.queries``); this module only shapes a few hundred rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, render_template
from flask_babel import gettext as _

from dashboard.charts import line_chart, stacked_bars
from dashboard.db import get_db
from dashboard.i18n import format_short_day
from monitor.pipeline.feedback import live_precision
from monitor.queries import (
    count_flags,
    flags_per_day,
    precision_by_week,
    top_contradicting_outlets,
)
from monitor.storage.tables import utcnow

bp = Blueprint("overview", __name__)

DAYS = 30
WEEKS = 26
SERIES = 6  # the biggest groups get their own colour; the rest are "Other"
LIVE_ROWS = 15  # live precision: the releases and outlets with most flags (every model version is shown)


def _series(rows: list[tuple[date, int, str, int]], days: list[date]) -> tuple[list[tuple[str, list[int]]],
                                                                              list[tuple[str, int]]]:
    """Per-group counts per day: the ``SERIES`` biggest groups, then "Other"; and the totals per group."""
    index = {day: i for i, day in enumerate(days)}
    per_group: dict[int, list[int]] = defaultdict(lambda: [0] * len(days))
    names: dict[int, str] = {}
    for day, gid, name, n in rows:
        if day in index:
            per_group[gid][index[day]] += n
            names[gid] = name or f"#{gid}"
    ranked = sorted(per_group, key=lambda gid: (-sum(per_group[gid]), names[gid]))
    series = [(names[gid], per_group[gid]) for gid in ranked[:SERIES]]
    if len(ranked) > SERIES:
        other = [sum(per_group[gid][i] for gid in ranked[SERIES:]) for i in range(len(days))]
        series.append((_("Other"), other))
    return series, [(names[gid], sum(per_group[gid])) for gid in ranked]


def _precision(confirmed: int, dismissed: int) -> float | None:
    return confirmed / (confirmed + dismissed) if confirmed + dismissed else None


def _live_tables(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Live precision per group: releases and outlets with most flags first (cut to ``LIVE_ROWS``), every model
    version by name."""
    out: dict[str, dict[str, Any]] = {}
    for group in ("release", "outlet"):
        ranked = sorted(rows[group], key=lambda r: (-r["flags"], str(r["name"] or "")))
        out[group] = {"rows": ranked[:LIVE_ROWS], "total": len(ranked)}
    versions = sorted(rows["model_version"], key=lambda r: str(r["key"] or ""))
    out["model_version"] = {"rows": versions, "total": len(versions)}
    return out


@bp.route("/overview")
def overview() -> Any:
    db = get_db()
    now = utcnow()
    today = datetime.combine(now.date(), time.min, tzinfo=UTC)
    week_start = today - timedelta(days=today.weekday())
    since = today - timedelta(days=DAYS - 1)
    days = [since.date() + timedelta(days=i) for i in range(DAYS)]

    feed_series, feed_totals = _series(flags_per_day(db, since, "feed"), days)
    release_series, release_totals = _series(flags_per_day(db, since, "release"), days)

    weeks_since = week_start - timedelta(weeks=WEEKS - 1)
    by_week = {week: (c, d) for week, c, d in precision_by_week(db, since=weeks_since)}
    week_points = []
    week_rows = []
    for i in range(WEEKS):
        week = (weeks_since + timedelta(weeks=i)).date()
        confirmed, dismissed = by_week.get(week, (0, 0))
        week_points.append((format_short_day(week), _precision(confirmed, dismissed)))
        if confirmed or dismissed:
            week_rows.append((week, confirmed, dismissed, _precision(confirmed, dismissed)))

    bar_labels = {"y_label": _("flags"), "x_label": _("day (UTC)"), "other": _("Other"), "day_label": format_short_day}
    return render_template(
        "overview.html",
        new_today=count_flags(db, today),
        new_week=count_flags(db, week_start),
        week_start=week_start.date(),
        days=DAYS,
        feed_chart=stacked_bars(days, feed_series, **bar_labels,
                                title=_("Contradiction flags per day by outlet, last %(days)s days", days=DAYS)),
        release_chart=stacked_bars(days, release_series, **bar_labels,
                                   title=_("Contradiction flags per day by release, last %(days)s days", days=DAYS)),
        feed_totals=feed_totals,
        release_totals=release_totals,
        outlets=top_contradicting_outlets(db, 10),
        precision_chart=line_chart(week_points, title=_("Reviewer precision of contradiction flags per week"),
                                   y_label=_("confirmed / reviewed"), x_label=_("week starting (UTC)")),
        week_rows=week_rows,
        live=_live_tables(live_precision(db)),
        live_rows=LIVE_ROWS,
    )
