"""``python -m pyprobe``: the pyprobe command."""

from pyprobe.cli.main import main

raise SystemExit(main())
