"""`python -m restyle.cli` is the `restyle` command (as is `python -m restyle`)."""

import sys

from restyle.cli import main

sys.exit(main())
