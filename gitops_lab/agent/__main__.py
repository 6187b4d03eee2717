"""`python -m gitops_lab.agent [args]` = `gitops-lab agent run [args]`."""

import sys

from gitops_lab.cli import main

sys.exit(main(["agent", "run", *sys.argv[1:]]))
