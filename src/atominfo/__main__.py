import sys

from atominfo.cli import main

sys.exit(main())
