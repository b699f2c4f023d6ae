"""`python -m handler.manifests [--check]`."""

import sys

from handler.manifests import main

sys.exit(main())
