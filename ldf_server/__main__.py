"""Allow ``python -m ldf_server``."""

from ldf_server.cli import main

raise SystemExit(main())
