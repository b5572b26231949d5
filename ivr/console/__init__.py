"""The handlers' console: the web pages call handlers, supervisors and admins use under /console/.

`web.install(app)` wires it into the app (sign-in, CSRF, security headers, cookie);
the routes are split by audience: `auth_routes` (everyone), `work_routes` and `pass_on_routes` (handlers),
`supervise_routes` (supervisors), `admin_routes` (admins).
"""
