"""`python -m manifests [--check]`."""

import sys

from manifests import main

sys.exit(main())
