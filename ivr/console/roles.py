"""Roles, enforced on the server: every console view names the least role it needs."""

from __future__ import annotations

import functools
from typing import Callable

from flask import render_template
from flask_login import current_user, login_required


def requires(role: str) -> Callable:
    """Sign-in required, and `role` or one above it (handler < supervisor < admin); else 403."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        @login_required
        def guarded(*args, **kwargs):  # type: ignore[no-untyped-def]
            if not current_user.has_role(role):
                return render_template("console/error.html", title="Not allowed",
                                       message=f"This page is for the {role} role."), 403
            return view(*args, **kwargs)

        return guarded

    return decorator
