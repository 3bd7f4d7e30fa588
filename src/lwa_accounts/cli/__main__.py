"""``python -m lwa_accounts.cli``: the ``lwa-accounts`` command without its console script."""

from __future__ import annotations

import sys

from lwa_accounts.cli import main

sys.exit(main())
