"""Reviewer decisions as labelled examples, and the live precision of the flags.

Every ``confirm`` and ``dismiss`` of a match writes a :class:`~monitor.storage.tables.Feedback` row that freezes the
claim text, the statement text, the model's label, the label the decision implies, the reason, the model version,
the reviewer and the time. Nothing is ever deleted: a reopen leaves the row in place, and a later decision on the
same match supersedes it (the latest decision per match wins when training rows are built).

How a decision maps onto the four stance labels (``contradicts``, ``supports``, ``discusses``, ``unrelated``)
---------------------------------------------------------------------------------------------------------
* ``confirm`` -> ``contradicts``. The reviewer says the claim contradicts the statement.
* ``dismiss`` with reason "not a contradiction", or with no reason at all -> *not contradicts*. The reviewer tells
  us only what the pair is **not**; the label stored is the model's own most likely other label (its probabilities
  with ``contradicts`` removed), i.e. the least-informative 4-class label consistent with the decision. For
  evaluation the signal is used as binary (contradicts vs not), so this choice never rewards a guess.
* ``dismiss`` "different measure" -> *not contradicts*, chosen the same way. The two texts talk about different
  quantities, which is exactly the figure-mismatch false positive the model must unlearn: training signal.
* ``dismiss`` "outdated release" -> stored as ``contradicts`` (the texts do disagree; a newer figure makes the
  claim right) but **not training signal**: the decision is about the release, not about the text pair.
* ``dismiss`` "duplicate" / "other" -> stored with the predicted label, **not training signal**: a duplicate says
  nothing about the pair, and "other" is free text we cannot interpret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from monitor.storage.tables import Claim, Feed, Feedback, Item, Match, Release, Statement, User, utcnow

LABELS = ("contradicts", "supports", "discusses", "unrelated")
NOT_CONTRADICTION_REASONS = ("not a contradiction", "different measure")
NON_TRAINING_REASONS = ("outdated release", "duplicate", "other")
DECISIONS = ("confirm", "dismiss")


def reason_category(note: str | None) -> str | None:
    """The dismiss reason a note starts with (the dashboard stores "reason: free text"), else None."""
    text = (note or "").strip().casefold()
    for reason in (*NOT_CONTRADICTION_REASONS, *NON_TRAINING_REASONS):
        if text == reason or text.startswith(reason + ":") or text.startswith(reason + " "):
            return reason
    return None


def _best_other_label(match: Match) -> str:
    probabilities = {k: float(v) for k, v in (match.probabilities or {}).items() if k != "contradicts"}
    if match.label != "contradicts" and match.label in LABELS:
        probabilities.setdefault(match.label, float(match.score))
    if not probabilities:
        return "discusses"
    return max(sorted(probabilities), key=probabilities.__getitem__)


def implied_label(match: Match, action: str, note: str | None) -> tuple[str, bool]:
    """(label the decision implies, whether it is training signal) for a confirm or dismiss."""
    if action == "confirm":
        return "contradicts", True
    if action != "dismiss":
        raise ValueError(f"{action!r} is not a labelling decision")
    reason = reason_category(note)
    if reason is None or reason in NOT_CONTRADICTION_REASONS:
        # a bare dismiss (no reason given, e.g. from the CLI) means "this is not a contradiction"
        if reason is None and (note or "").strip():
            return match.label, False  # a free-text reason we cannot interpret
        return _best_other_label(match), True
    if reason == "outdated release":
        return "contradicts", False
    return match.label, False


def record_feedback(session: Session, match: Match, user: User | None, action: str, note: str | None,
                    now: datetime | None = None) -> Feedback | None:
    """Write the Feedback row of a confirm/dismiss (None for any other action)."""
    if action not in DECISIONS:
        return None
    claim_text = session.scalar(select(Claim.text).where(Claim.id == match.claim_id)) or ""
    statement_text = session.scalar(select(Statement.text).where(Statement.id == match.statement_id)) or ""
    label, _training = implied_label(match, action, note)
    row = Feedback(match_id=match.id, claim_text=claim_text, statement_text=statement_text,
                   predicted_label=match.label, label=label,
                   reason=f"{action}: {note}" if note else action,
                   model_version=match.model_version, user_id=user.id if user else None,
                   created_at=now or utcnow())
    session.add(row)
    return row


@dataclass(frozen=True)
class FeedbackRow:
    """One training example from review: the latest usable decision on a match."""

    feedback_id: int
    match_id: int | None
    claim: str
    statement: str
    label: str
    created_at: datetime
    reason: str | None
    model_version: str

    @property
    def contradicts(self) -> bool:
        return self.label == "contradicts"


def training_rows(session: Session, *, until: datetime | None = None) -> list[FeedbackRow]:
    """Training examples from feedback: per match the latest decision wins; unusable decisions drop the match.

    Rows are returned oldest first (so a caller can split by time).
    """
    query = select(Feedback).order_by(Feedback.created_at, Feedback.id)
    if until is not None:
        query = query.where(Feedback.created_at <= until)
    latest: dict[Any, Feedback] = {}
    for row in session.scalars(query):
        key = row.match_id if row.match_id is not None else ("text", row.claim_text, row.statement_text)
        latest[key] = row
    out = [FeedbackRow(r.id, r.match_id, r.claim_text, r.statement_text, r.label, r.created_at, r.reason,
                       r.model_version)
           for r in latest.values() if _training_signal(r)]
    out.sort(key=lambda r: (r.created_at, r.feedback_id))
    return out


def decision_of(row: Feedback) -> tuple[str, str | None]:
    """(action, note) of a stored decision; ``Feedback.reason`` is "confirm", "dismiss" or "<action>: <note>"."""
    action, _, note = (row.reason or "").partition(":")
    action = action.strip()
    if action not in DECISIONS:  # written by something else: infer from the label
        return ("confirm" if row.label == "contradicts" else "dismiss"), row.reason
    return action, note.strip() or None


def _training_signal(row: Feedback) -> bool:
    """Whether a stored decision is training signal (see the module docstring)."""
    action, note = decision_of(row)
    if action == "confirm":
        return True
    category = reason_category(note)
    if category in NON_TRAINING_REASONS:
        return False
    if category in NOT_CONTRADICTION_REASONS:
        return True
    return not note  # a bare dismiss means "not a contradiction"; free text we cannot interpret is skipped


def split_by_time(rows: list[FeedbackRow], holdout_share: float = 0.2) -> tuple[list[FeedbackRow],
                                                                                 list[FeedbackRow]]:
    """(older rows for training, the newest ``holdout_share`` for evaluation); never a random split."""
    ordered = sorted(rows, key=lambda r: (r.created_at, r.feedback_id))
    n_eval = int(round(len(ordered) * holdout_share))
    if n_eval == 0:
        return ordered, []
    return ordered[:-n_eval], ordered[-n_eval:]


# -- live precision ------------------------------------------------------------------------------------


def live_precision(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Share of flags confirmed, per release, per outlet and per model version (one GROUP BY each).

    A flag is a match labelled ``contradicts`` that was not withdrawn. ``precision`` is confirmed / (confirmed +
    dismissed), the share of *decided* flags that reviewers confirmed (None before any decision);
    ``confirmed_share`` is confirmed / all flags.
    """
    confirmed = func.sum(case((Match.status == "confirmed", 1), else_=0))
    dismissed = func.sum(case((Match.status == "dismissed", 1), else_=0))
    flagged = (Match.label == "contradicts", Match.status != "withdrawn")

    def rows(key: Any, name: Any, *joins: Any) -> list[dict[str, Any]]:
        query = select(key, name, func.count(Match.id), confirmed, dismissed).select_from(Match)
        for target, on in joins:
            query = query.join(target, on)
        query = query.where(*flagged).group_by(key, name).order_by(key)
        out = []
        for k, n, total, conf, dism in session.execute(query):
            conf, dism = int(conf or 0), int(dism or 0)
            out.append({"key": k, "name": n, "flags": int(total), "confirmed": conf, "dismissed": dism,
                        "precision": round(conf / (conf + dism), 4) if conf + dism else None,
                        "confirmed_share": round(conf / total, 4) if total else None})
        return out

    return {
        "release": rows(Release.id, Release.title, (Release, Release.id == Match.release_id)),
        "outlet": rows(Feed.id, Feed.name, (Claim, Claim.id == Match.claim_id), (Item, Item.id == Claim.item_id),
                       (Feed, Feed.id == Item.feed_id)),
        "model_version": rows(Match.model_version, Match.model_version),
    }
