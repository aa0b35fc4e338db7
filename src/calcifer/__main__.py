"""`python -m calcifer serve`."""

import sys

from calcifer.cli import main

sys.exit(main())
