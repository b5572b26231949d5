"""`python -m dev.standin`: the provider stand-in as a process, for `make run`."""

from dev.standin.server import main

raise SystemExit(main())
