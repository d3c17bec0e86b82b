"""``python -m opencount``: the opencount command."""

from opencount.cli import main

raise SystemExit(main())
