"""`python -m edgecompress`: the same as the `edgecompress` command."""

import sys

from edgecompress.cli import main

sys.exit(main())
