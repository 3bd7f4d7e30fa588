"""``python -m lwa_accounts.kit upgrade``: migrate a kit deployment's database.

The command itself is ``lwa_accounts.cli.kit`` (every command line lives under ``cli/``).
"""

from __future__ import annotations

import sys

from lwa_accounts.cli.kit import main

if __name__ == "__main__":
    sys.exit(main())
