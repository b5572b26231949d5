"""The console's forms (flask-wtf): each one carries a CSRF token and checks its fields."""

from __future__ import annotations

from collections.abc import Iterable

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import HiddenInput

from ivr.console.casework import MAX_NOTE_CHARACTERS, MAX_SUMMARY_CHARACTERS
from ivr.core.accounts import MAX_PASSWORD_CHARACTERS, ROLES


def choices(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """A select's options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


class SignInForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_CHARACTERS)])
    code = StringField("Code from your authenticator app", validators=[DataRequired(), Length(max=12)])


class EnrolForm(FlaskForm):
    password = PasswordField("Choose a password", validators=[DataRequired(), Length(max=MAX_PASSWORD_CHARACTERS)])
    password_again = PasswordField("The same password again", validators=[DataRequired()])
    code = StringField("The code your app shows now", validators=[DataRequired(), Length(max=12)])


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class SummaryForm(FlaskForm):
    summary = TextAreaField("Summary for the police (this is all that leaves the console)",
                            validators=[Length(max=MAX_SUMMARY_CHARACTERS)])
    area = SelectField("Area", validators=[Optional()])
    category = SelectField("Category", validators=[Optional()])


class TriageForm(FlaskForm):
    triage = SelectField("Triage")  # choices: the catalogue's words (work_routes)


class NoteForm(FlaskForm):
    text = TextAreaField("Internal note (handlers only; never passed on)",
                         validators=[DataRequired(), Length(max=MAX_NOTE_CHARACTERS)])


class DuplicateForm(FlaskForm):
    original = StringField("Duplicate of reference", validators=[DataRequired(), Length(max=32)])


# How many parts the handler's page showed: a finish is refused when the tipster added more since.
def parts_seen_field() -> IntegerField:
    return IntegerField(widget=HiddenInput(), validators=[InputRequired(), NumberRange(min=0, max=10_000)])


class PassOnForm(FlaskForm):
    partner = SelectField("Pass on to", validators=[DataRequired()])
    summary_version = HiddenField()
    parts_seen = parts_seen_field()


class CloseForm(FlaskForm):
    # No reason is chosen for the handler: the first option is a placeholder that does not validate.
    reason = SelectField("Reason", validators=[DataRequired()])
    confirm = BooleanField("Yes, close this tip", validators=[DataRequired()])
    parts_seen = parts_seen_field()


class QuestionForm(FlaskForm):
    # Bounded here only against floods: what fits is the reply's (Questions.ask says how much).
    text = TextAreaField("Your question", validators=[DataRequired(), Length(max=4000)])


class WithdrawForm(FlaskForm):
    number = IntegerField(widget=HiddenInput(), validators=[InputRequired(), NumberRange(min=1, max=10_000)])


class ReassignForm(FlaskForm):
    handler = StringField("Give to (account name)", validators=[DataRequired(), Length(max=32)])


class NewAccountForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Regexp(r"^[a-z][a-z0-9._-]{1,31}$",
                                                                   message="2-32 lower-case letters, digits, . _ -")])
    role = SelectField("Role", choices=choices((r, r) for r in ROLES))


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=choices((r, r) for r in ROLES))
