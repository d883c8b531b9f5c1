"""Accounts (admins only) and each user's own API tokens (``/account/tokens``).

Generated passwords and new token plaintexts are rendered once in the response to the POST that made them
(never flashed: the flash store is the signed, not encrypted, session cookie) and never stored.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from dashboard.auth import ADMIN_ROLES, require_role
from dashboard.db import get_db
from dashboard.i18n import ROLE_NAMES, term
from monitor.accounts import (
    ROLES,
    TOKEN_NAME_MAX,
    create_api_token,
    create_user,
    generate_password,
    get_user,
    list_api_tokens,
    revoke_api_token,
    set_active,
    set_role,
)
from monitor.errors import MonitorError, NotFoundError
from monitor.storage.tables import User

bp = Blueprint("users", __name__)


class UserForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(_l("Enter a username.")), Length(max=150)])
    role = SelectField(_l("Role"), choices=[SelectChoice(r, ROLE_NAMES.get(r, r)) for r in ROLES],
                       default="reviewer")
    password = PasswordField(_l("Password"), validators=[Optional(), Length(min=8, max=1024,
                                                                            message=_l("At least 8 characters."))])


class RoleForm(FlaskForm):
    role = StringField("Role", validators=[DataRequired(), AnyOf(ROLES)])


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(_l("Name the token (e.g. the script using it).")),
                                                 Length(max=TOKEN_NAME_MAX)])


def _message(err: Exception) -> str:
    text = str(err) or _("invalid value")
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _render_users(form: UserForm | None = None, created: dict[str, str] | None = None, status: int = 200) -> Any:
    users = list(get_db().scalars(select(User).order_by(User.username)))
    return render_template("users/index.html", users=users, form=form or UserForm(formdata=None),
                           roles=ROLES, created=created), status


@bp.route("/users")
@require_role(*ADMIN_ROLES)
def index() -> Any:
    return _render_users()


@bp.route("/users/add", methods=["POST"])
@require_role(*ADMIN_ROLES)
def add() -> Any:
    form = UserForm()
    if not form.validate_on_submit():
        return _render_users(form, status=400)
    generated = not form.password.data
    password = form.password.data or generate_password()
    db = get_db()
    try:
        user = create_user(db, form.username.data or "", password, form.role.data or "reviewer")
    except MonitorError as err:
        db.rollback()
        form.username.errors = [*form.username.errors, _message(err)]
        return _render_users(form, status=400)
    db.commit()
    created = {"username": user.username, "role": user.role}
    if generated:
        created["password"] = password
    return _render_users(created=created)


def _other_user(user_id: int, refusal: str) -> User:
    try:
        user = get_user(get_db(), user_id)
    except NotFoundError:
        abort(404)
    if user.id == current_user.id:
        flash(refusal, "error")
        return None  # type: ignore[return-value]
    return user


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
@require_role(*ADMIN_ROLES)
def disable(user_id: int) -> Any:
    user = _other_user(user_id, _("You cannot disable your own account; ask another administrator."))
    if user is not None:
        set_active(get_db(), user_id, False)
        get_db().commit()
        flash(_("%(user)s is disabled: they can no longer sign in or use API tokens.", user=user.username),
              "success")
    return redirect(url_for("users.index"))


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
@require_role(*ADMIN_ROLES)
def enable(user_id: int) -> Any:
    try:
        user = set_active(get_db(), user_id, True)
    except NotFoundError:
        abort(404)
    get_db().commit()
    flash(_("%(user)s is enabled.", user=user.username), "success")
    return redirect(url_for("users.index"))


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@require_role(*ADMIN_ROLES)
def change_role(user_id: int) -> Any:
    form = RoleForm()
    if not form.validate_on_submit():
        flash(_("Choose one of the roles: %(roles)s.", roles=", ".join(term("role", r) for r in ROLES)), "error")
        return redirect(url_for("users.index"))
    user = _other_user(user_id, _("You cannot change the role of your own account; ask another administrator."))
    if user is not None:
        set_role(get_db(), user_id, form.role.data or "")
        get_db().commit()
        flash(_("%(user)s is now %(role)s.", user=user.username, role=term("role", user.role)), "success")
    return redirect(url_for("users.index"))


# -- the signed-in user's API tokens -------------------------------------------------------------------------

def _render_tokens(form: TokenForm | None = None, new_token: str | None = None, status: int = 200) -> Any:
    tokens = list_api_tokens(get_db(), current_user.id)
    return render_template("users/tokens.html", tokens=tokens, form=form or TokenForm(formdata=None),
                           new_token=new_token), status


@bp.route("/account/tokens")
def tokens() -> Any:
    return _render_tokens()


@bp.route("/account/tokens", methods=["POST"])
def create_token() -> Any:
    form = TokenForm()
    if not form.validate_on_submit():
        return _render_tokens(form, status=400)
    db = get_db()
    try:
        _token, plaintext = create_api_token(db, current_user.row, form.name.data or "")
    except MonitorError as err:
        db.rollback()
        form.name.errors = [*form.name.errors, _message(err)]
        return _render_tokens(form, status=400)
    db.commit()
    return _render_tokens(new_token=plaintext)


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke_token(token_id: int) -> Any:
    db = get_db()
    try:
        token = revoke_api_token(db, token_id, user_id=current_user.id)
    except NotFoundError:
        abort(404)
    db.commit()
    flash(_("Token “%(name)s” revoked; requests with it are refused from now on.", name=token.name), "success")
    return redirect(url_for("users.tokens"))
