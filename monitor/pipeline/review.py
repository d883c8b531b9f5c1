"""Review of a match by staff: every action changes the status and leaves an immutable audit event.

A confirm or dismiss also writes a ``Feedback`` row (the decision as a labelled example, see
``monitor.pipeline.feedback``). ``withdrawn`` is set only by re-scoring after a model promotion.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from monitor.errors import MonitorError, NotFoundError
from monitor.storage.tables import Match, ReviewEvent, User, utcnow

ACTIONS: dict[str, str | None] = {
    "confirm": "confirmed",
    "dismiss": "dismissed",
    "escalate": "escalated",
    "resolve": "resolved",
    "reopen": "new",
    "comment": None,  # keeps the status
    "assign": None,  # keeps the status; changes the assignee
}
STATUSES = ("new", "confirmed", "dismissed", "escalated", "resolved", "withdrawn")


def review_match(session: Session, match_id: int, user: User | None, action: str, note: str | None = None,
                 now: datetime | None = None, *, assignee: User | None = None) -> ReviewEvent:
    """Apply ``action`` to a match and record who did it; raises for an unknown match or action.

    ``assign`` sets ``assignee`` (None unassigns) and records the new assignee's name in the event note.
    """
    if action not in ACTIONS:
        raise MonitorError(f"unknown review action {action!r}; choose one of {', '.join(ACTIONS)}")
    match = session.get(Match, match_id)
    if match is None:
        raise NotFoundError(f"match {match_id} does not exist")
    note = (note or "").strip() or None
    if action == "comment" and not note:
        raise MonitorError("a comment needs some text")
    if action == "assign":
        match.assignee_id = assignee.id if assignee else None
        note = f"assigned to {assignee.username}" if assignee else "unassigned"
    now = now or utcnow()
    before = match.status
    after = ACTIONS[action] or before
    if ACTIONS[action] is not None:
        match.status = after
        match.reviewed_by_id = user.id if user else None
        match.reviewed_at = now
        if note:
            match.note = note
    event = ReviewEvent(match_id=match.id, user_id=user.id if user else None, action=action,
                        from_status=before, to_status=after, note=note, created_at=now)
    session.add(event)
    if action in ("confirm", "dismiss"):
        # the decision is also a labelled example for retraining (monitor.pipeline.feedback)
        from monitor.pipeline.feedback import record_feedback

        record_feedback(session, match, user, action, note, now)
    session.flush()
    return event
