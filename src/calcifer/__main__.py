"""`python -m calcifer serve`."""

import sys

from calcifer.cli.main import main

sys.exit(main())
