"""`python -m restyle` is the `restyle` command."""

from restyle.cli import main

raise SystemExit(main())
