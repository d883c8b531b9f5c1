"""SQLAlchemy 2.x mapped tables. The schema itself is created and changed only by Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset, so it is restored on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store times as timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Feed(Base):
    """A source of items: a news feed, or an official feed whose items become releases."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16), default="news")  # news | official
    interval_minutes: Mapped[int] = mapped_column(Integer, default=30)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # fetch state, stored as data on the row (as Miniflux does)
    etag: Mapped[str | None] = mapped_column(String(1024))
    last_modified: Mapped[str | None] = mapped_column(String(255))
    body_hash: Mapped[str | None] = mapped_column(String(64))
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[list[str] | None] = mapped_column(JSON)
    next_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    full_text: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")  # fetch whole articles

    items: Mapped[list[Item]] = relationship(back_populates="feed", passive_deletes=True)


class Item(Base):
    """One entry of a feed, cleaned. Unique per (feed, guid); ``url_key`` stops the same story twice."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("feed_id", "guid", name="uq_items_feed_guid"),
        Index("ix_items_checked_at", "checked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    guid: Mapped[str] = mapped_column(String(1024))
    url: Mapped[str | None] = mapped_column(String(2048))
    url_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text, default="")
    summary_text: Mapped[str] = mapped_column(Text, default="")
    content_text: Mapped[str] = mapped_column(Text, default="")
    content_html: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(String(512))
    language: Mapped[str | None] = mapped_column(String(16), index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_raw: Mapped[str | None] = mapped_column(String(255))  # the date string as the feed gave it
    date_flag: Mapped[str | None] = mapped_column(String(32))  # missing | impossible | future (clamped)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))
    story_key: Mapped[str | None] = mapped_column(String(64), index=True)  # normalised title+text hash
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    feed: Mapped[Feed] = relationship(back_populates="items")
    claims: Mapped[list[Claim]] = relationship(back_populates="item", passive_deletes=True,
                                               order_by="Claim.position")

    @property
    def body_text(self) -> str:
        """The longest text the feed gave (content, else summary)."""
        return self.content_text if len(self.content_text) >= len(self.summary_text) else self.summary_text


class ItemVersion(Base):
    """An earlier text of an item that changed: edits keep their history."""

    __tablename__ = "item_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    summary_text: Mapped[str] = mapped_column(Text, default="")
    content_text: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Sighting(Base):
    """Another feed (outlet) carrying a story already stored as an item."""

    __tablename__ = "sightings"
    __table_args__ = (UniqueConstraint("item_id", "feed_id", name="uq_sightings_item_feed"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    guid: Mapped[str] = mapped_column(String(1024))
    url: Mapped[str | None] = mapped_column(String(2048))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    feed: Mapped[Feed] = relationship()


class FeedRun(Base):
    """One recorded collection attempt of a feed (health history)."""

    __tablename__ = "feed_runs"
    __table_args__ = (Index("ix_feed_runs_feed_started", "feed_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # ok | not_modified | warning | error
    http_status: Mapped[int | None] = mapped_column(Integer)
    new: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class Release(Base):
    """An official release: the reference text that news claims are checked against."""

    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2048))
    language: Mapped[str | None] = mapped_column(String(16))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    body: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual | feed | demo
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"))
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    statements: Mapped[list[Statement]] = relationship(back_populates="release", passive_deletes=True,
                                                       order_by="Statement.position")


class Statement(Base):
    """A sentence of a release; ``start``/``end`` are character offsets into ``Release.body``."""

    __tablename__ = "statements"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)

    release: Mapped[Release] = relationship(back_populates="statements")


class Claim(Base):
    """A check-worthy sentence of an item (headline or body), with its offsets in that field."""

    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # title | body
    text: Mapped[str] = mapped_column(Text)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)

    item: Mapped[Item] = relationship(back_populates="claims")


class Match(Base):
    """The classifier's judgement of one (claim, statement) pair, and its review state."""

    __tablename__ = "matches"
    __table_args__ = (
        UniqueConstraint("claim_id", "statement_id", name="uq_matches_claim_statement"),
        # the review queue: equality on status and label, ordered by score then id (scanned backwards)
        Index("ix_matches_queue_score", "status", "label", "score", "id"),
        Index("ix_matches_score_id", "score", "id"),  # the queue with no status/label filter (0007)
        Index("ix_matches_same_story", "statement_id", "label", "score", "id"),  # "other outlets" (0007)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"), index=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id", ondelete="CASCADE"), index=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(16))  # contradicts | supports | discusses
    score: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model_version: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="new")  # new|confirmed|dismissed|escalated|resolved|withdrawn
    uncertainty: Mapped[float | None] = mapped_column(Float)  # 1 - margin between the two likeliest labels
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    claim: Mapped[Claim] = relationship()
    statement: Mapped[Statement] = relationship()
    release: Mapped[Release] = relationship()
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    events: Mapped[list[ReviewEvent]] = relationship(back_populates="match", order_by="ReviewEvent.id",
                                                     passive_deletes=True)


class User(Base):
    """A dashboard account; ``role`` is admin, reviewer or viewer."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="reviewer")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[str | None] = mapped_column(String(320))
    daily_digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    locale: Mapped[str | None] = mapped_column(String(16))  # interface language; None: the browser's
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A per-user token for the read-only JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class ReviewEvent(Base):
    """An immutable audit entry: who did what to which match, and when."""

    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))  # confirm|dismiss|escalate|resolve|reopen|assign|comment
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    match: Mapped[Match] = relationship(back_populates="events")
    user: Mapped[User | None] = relationship()


class Feedback(Base):
    """A reviewer's decision as a labelled example, frozen with the texts and the model that made the match."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[int | None] = mapped_column(ForeignKey("matches.id", ondelete="SET NULL"), index=True)
    claim_text: Mapped[str] = mapped_column(Text)
    statement_text: Mapped[str] = mapped_column(Text)
    predicted_label: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(16))  # the label the reviewer's decision implies
    reason: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ModelVersion(Base):
    """The model registry: every trained classifier with its card, metrics and promotion decision."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(128), unique=True)
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))  # candidate | active | rejected | retired
    decision: Mapped[str | None] = mapped_column(Text)  # why it was or was not promoted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertRule(Base):
    """Who is told about which new contradictions, through which channel."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    release_ids: Mapped[list[int] | None] = mapped_column(JSON)  # None: every release
    feed_ids: Mapped[list[int] | None] = mapped_column(JSON)  # None: every outlet
    min_score: Mapped[float] = mapped_column(Float, default=0.8)
    channel: Mapped[str] = mapped_column(String(16))  # email | webhook
    target: Mapped[str] = mapped_column(String(2048))  # addresses (comma separated) or webhook URL
    secret: Mapped[str | None] = mapped_column(String(255))  # HMAC key of a webhook
    window_minutes: Mapped[int] = mapped_column(Integer, default=24 * 60)  # one alert per story per window
    max_per_hour: Mapped[int] = mapped_column(Integer, default=20)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertDelivery(Base):
    """One alert for one story to one rule's target; unique per (rule, story, window) so restarts never resend."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("rule_id", "dedup_key", name="uq_alert_deliveries_rule_dedup"),
                      Index("ix_alert_deliveries_due", "status", "next_attempt_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True)
    match_id: Mapped[int | None] = mapped_column(ForeignKey("matches.id", ondelete="SET NULL"))
    dedup_key: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2048))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed | suppressed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
