"""Retraining: a better candidate is promoted, a worse one refused, rollback restores, re-scoring withdraws."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from models import LABELS, StanceModel, save_model
from monitor.errors import ModelError
from monitor.pipeline import registry
from monitor.pipeline.retrain import (
    decide,
    default_fit,
    release_synthetic_pairs,
    rescore_open_matches,
    retrain,
)
from monitor.storage.db import transaction
from monitor.storage.tables import Match, ModelVersion, ReviewEvent, Statement
from learning_fixtures import T0, add_flag, add_releases, rt, seed_feedback  # noqa: F401

ROTATE = {"contradicts": "supports", "supports": "unrelated", "unrelated": "discusses", "discusses": "contradicts"}


def rotated_fit(pairs, labels, weights, seed):  # type: ignore[no-untyped-def]
    """A deliberately wrong trainer: every label replaced by another (all four classes stay present)."""
    return default_fit(pairs, [ROTATE[lbl] for lbl in labels], weights, seed)


def install_bad_model(runtime, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """Train a wrong model on the release pairs and make it the active registry version."""
    with runtime.factory() as s:
        rows = release_synthetic_pairs(s, 30)
    pairs, labels = [(c, st) for c, st, _ in rows], [lbl for *_, lbl in rows]
    pipe = rotated_fit(pairs, labels, np.ones(len(labels)), 0)
    model = StanceModel(pipe, {"version": "bad-1"}, "bad-1")
    path = tmp_path / "bad-1.skops"
    save_model(model, path)
    with transaction(runtime.factory) as s:
        registry.register(s, version="bad-1", path=path, card=model.card, metrics={}, status="active",
                          decision="installed by the test", now=T0)
    assert runtime.reload_model().version == "bad-1"
    return "bad-1"


def test_not_worse_rule() -> None:
    cur = {"feedback_slice": {"contradicts_f1": 0.80}, "fnc1_hold_out": {"macro_f1": 0.50}}
    assert decide(cur, {"feedback_slice": {"contradicts_f1": 0.796}, "fnc1_hold_out": {"macro_f1": 0.491}})[0]
    promoted, why = decide(cur, {"feedback_slice": {"contradicts_f1": 0.79}, "fnc1_hold_out": {"macro_f1": 0.6}})
    assert not promoted and "feedback slice contradicts F1 0.7900 vs current 0.8000 (worse" in why
    assert not decide(cur, {"feedback_slice": {"contradicts_f1": 0.9}, "fnc1_hold_out": {"macro_f1": 0.48}})[0]
    assert not decide({}, {})[0]  # nothing to compare with: never promoted blind


def test_retrain_promotes_a_better_model_refuses_a_worse_one_and_rolls_back(rt, tmp_path: Path) -> None:  # noqa: F811
    seed_feedback(rt)  # 30 decisions: 24 train, the newest 6 held out
    bad = install_bad_model(rt, tmp_path)
    with transaction(rt.factory) as s:  # an open flag that a sound model does not flag
        statement = s.scalars(select(Statement).order_by(Statement.id)).first()
        open_match = add_flag(s, statement, "According to officials, " + statement.text[0].lower()
                              + statement.text[1:], created_at=T0 + timedelta(days=2))

    good = retrain(rt, now=T0 + timedelta(days=3))
    assert good.promoted, good.decision
    assert good.decision.startswith("promoted: feedback slice contradicts F1")
    cand, cur = good.metrics["candidate"]["feedback_slice"], good.metrics["current"]["feedback_slice"]
    assert cand["n"] == 6 and cand["contradicts_f1"] > cur["contradicts_f1"]
    assert good.counts["feedback_train"] == 24 and good.counts["feedback_held_out"] == 6
    assert good.path == rt.settings.data_dir / "models" / f"{good.version}.skops" and good.path.is_file()
    assert (good.path.parent / f"{good.version}.card.json").is_file()
    assert rt.model.version == good.version
    with rt.factory() as s:
        rows = {r.version: r for r in registry.list_versions(s)}
        assert rows[good.version].status == "active" and rows[bad].status == "retired"
        assert rows[good.version].card["decision"] == good.decision
        # re-scoring after the promotion: the faithful claim leaves the queue with a recorded reason
        withdrawn = s.get(Match, open_match.id)
        assert withdrawn.status == "withdrawn"
        event = s.scalars(select(ReviewEvent).where(ReviewEvent.match_id == open_match.id)).one()
        assert event.action == "withdraw" and event.user_id is None
        assert event.note.startswith(f"no longer flagged by model {good.version}:")
    assert good.rescore is not None and good.rescore.withdrawn == 1

    worse = retrain(rt, now=T0 + timedelta(days=4), fit=rotated_fit)
    assert not worse.promoted and "(worse" in worse.decision
    with rt.factory() as s:
        row = registry.get_version(s, worse.version)
        assert row.status == "rejected" and row.decision == worse.decision and row.promoted_at is None
        assert registry.active_version(s).version == good.version
    assert rt.model.version == good.version

    # rollback: the earlier active version comes back; a never-promoted one cannot
    with transaction(rt.factory) as s:
        with pytest.raises(ModelError, match="never promoted"):
            registry.rollback(s, worse.version)
    with transaction(rt.factory) as s:
        registry.rollback(s, bad, now=T0 + timedelta(days=5), user="admin")
    assert rt.reload_model().version == bad
    with rt.factory() as s:
        statuses = {r.version: r.status for r in registry.list_versions(s)}
        assert statuses[bad] == "active" and statuses[good.version] == "retired"
        assert "restored as active by rollback by admin" in registry.get_version(s, bad).decision


def test_runtime_falls_back_to_the_bundled_model_when_the_active_file_is_tampered(rt, tmp_path: Path) -> None:  # noqa: F811
    with transaction(rt.factory) as s:
        add_releases(s)
    bad = install_bad_model(rt, tmp_path)
    (tmp_path / "bad-1.skops").write_bytes(b"changed")
    assert rt.reload_model().version != bad  # SHA-256 mismatch: the bundled model serves, with an error logged


class StubModel:
    """Flags claims containing WRONG; everything else supports."""

    version = "stub-2"

    def predict_proba_pairs(self, pairs):  # type: ignore[no-untyped-def]
        out = []
        for claim, _ in pairs:
            out.append([0.9, 0.05, 0.03, 0.02] if "WRONG" in claim else
                       [0.45, 0.5, 0.03, 0.02] if "close" in claim else [0.1, 0.8, 0.05, 0.05])
        return np.array(out)


def test_rescoring_moves_open_matches_only(rt) -> None:  # noqa: F811
    with transaction(rt.factory) as s:
        st = add_releases(s)["Police annual report"][0]
        stays = add_flag(s, st, "Police arrested WRONG 9,999 suspects.")
        goes = add_flag(s, st, "Police arrested 1,245 suspects, officials said.")
        close = add_flag(s, st, "a close call")
        reviewed = add_flag(s, st, "Police arrested 1,245 suspects.")
        reviewed.status = "confirmed"
        promoted = add_flag(s, st, "WRONG figure but was supports", label="supports", score=0.6)
    result = rescore_open_matches(rt.factory, StubModel(), threshold=0.5, now=T0)
    assert (result.rescored, result.withdrawn, result.newly_flagged) == (4, 2, 1)
    with rt.factory() as s:
        get = lambda m: s.get(Match, m.id)  # noqa: E731
        assert get(stays).status == "new" and get(stays).model_version == "stub-2"
        assert get(stays).uncertainty == pytest.approx(1 - (0.9 - 0.05))
        assert get(goes).status == "withdrawn" and get(close).status == "withdrawn"
        notes = {e.match_id: e.note for e in s.scalars(select(ReviewEvent).where(ReviewEvent.action == "withdraw"))}
        assert notes[goes.id] == "no longer flagged by model stub-2: label supports (0.80)"
        assert notes[close.id] == "no longer flagged by model stub-2: label supports (0.50)"
        assert get(reviewed).status == "confirmed" and get(reviewed).model_version == "seed-model"
        assert get(promoted).label == "contradicts" and get(promoted).status == "new"


def test_cli_models_list_rollback_and_train_with_feedback(rt, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    from monitor.cli import main

    seed_feedback(rt)
    install_bad_model(rt, tmp_path)
    for key, value in {"MONITOR_DATABASE_URL": rt.settings.resolved_database_url,
                       "MONITOR_DATA_DIR": str(rt.settings.data_dir), "MONITOR_TRAINING_DATA_DIR": "/nonexistent",
                       "MONITOR_RETRAIN_SYNTHETIC_SENTENCES": "30", "MONITOR_RETRAIN_MIN_FEEDBACK_EVAL": "4"}.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    trained = runner.invoke(main, ["train", "--with-feedback"])
    assert trained.exit_code == 0, trained.output
    assert '"promoted": true' in trained.output
    listed = runner.invoke(main, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    import json

    data = json.loads(listed.output)
    versions = {v["version"]: v for v in data["versions"]}
    assert versions["bad-1"]["status"] == "retired"
    assert "live_precision" in data and isinstance(data["live_precision"]["model_version"], list)
    text = runner.invoke(main, ["models", "list"])
    assert "bad-1" in text.output and "retired" in text.output
    back = runner.invoke(main, ["models", "rollback", "bad-1"])
    assert back.exit_code == 0, back.output
    assert "bad-1 is the active model" in back.output
    missing = runner.invoke(main, ["models", "rollback", "nope"])
    assert missing.exit_code == 1 and "no model version 'nope'" in missing.output
    with rt.factory() as s:
        assert s.scalar(select(ModelVersion.version).where(ModelVersion.status == "active")) == "bad-1"


def test_labels_are_the_models_labels() -> None:
    from monitor.pipeline.retrain import LABELS as RETRAIN_LABELS

    assert tuple(RETRAIN_LABELS) == tuple(LABELS)
