"""`python -m segment_cadence.cli`: the same as the `segment-cadence` console script."""

import sys

from segment_cadence.cli.main import main

sys.exit(main())
