"""``python -m bpmon`` is the ``bpmon`` command."""

import sys

from bpmon.cli import main

sys.exit(main())
