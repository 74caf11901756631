"""``python -m skmetric``: the demo (see ``skmetric._demo``)."""

import sys

from ._demo import main

if __name__ == "__main__":
    sys.exit(main())
