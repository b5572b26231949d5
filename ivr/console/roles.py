"""Roles, enforced on the server: every console view names the least role it needs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec

from flask import render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

P = ParamSpec("P")
View = Callable[P, ResponseReturnValue]


def signed_in(view: View[P]) -> View[P]:
    """Sign-in required (flask-login's `login_required`, typed: flask-login ships no types)."""
    guarded: View[P] = login_required(view)
    return guarded


def requires(role: str) -> Callable[[View[P]], View[P]]:
    """Sign-in required, and `role` or one above it (handler < supervisor < admin); else 403."""

    def decorator(view: View[P]) -> View[P]:
        def guarded(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            if not current_user.has_role(role):
                return render_template("console/error.html", title="Not allowed",
                                       message=f"This page is for the {role} role."), 403
            return view(*args, **kwargs)

        return functools.wraps(view)(signed_in(guarded))

    return decorator
