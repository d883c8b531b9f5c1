"""Flask-WTF forms; each carries (and checks) the CSRF token."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional, Regexp

DISMISS_REASONS = (
    "not a contradiction",
    "different measure",
    "outdated release",
    "duplicate",
    "other",
)
REVIEW_ACTIONS = ("confirm", "dismiss", "escalate", "resolve", "reopen", "comment", "assign")
BULK_ACTIONS = ("confirm", "dismiss", "escalate", "assign")


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=150)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


class ReviewForm(FlaskForm):
    """One review action; the page shows several small HTML forms that all post here."""

    # plain strings checked against fixed lists (the HTML is written by hand in match.html)
    action = StringField("Action", validators=[DataRequired(), AnyOf(REVIEW_ACTIONS)])
    dismiss_reason = StringField("Reason", validators=[Optional(), AnyOf(DISMISS_REASONS)])
    note = TextAreaField("Note", validators=[Optional(), Length(max=2000)])
    # "" unassigns; otherwise a user id, checked against the active reviewers by the view
    assignee = StringField("Assignee", validators=[Optional(), Regexp(r"^[0-9]{1,10}$")])

    def review_note(self) -> str | None:
        """The note stored with the action: the dismiss reason first, then the free text."""
        text = (self.note.data or "").strip()
        reason = self.dismiss_reason.data if self.action.data == "dismiss" else ""
        if reason and text:
            return f"{reason}: {text}"
        return reason or text or None


class BulkReviewForm(ReviewForm):
    """One action applied to the matches ticked in the queue (``ids`` are read with ``getlist``)."""

    action = StringField("Action", validators=[DataRequired(), AnyOf(BULK_ACTIONS)])


class LogoutForm(FlaskForm):
    """Only the CSRF token."""
