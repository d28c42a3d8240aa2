"""`python -m edgecompress.cli`: the same as the `edgecompress` command."""

import sys

from edgecompress.cli import main

sys.exit(main())
