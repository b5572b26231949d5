"""The handlers' console: the web pages call handlers, supervisors and admins use under /console/."""
