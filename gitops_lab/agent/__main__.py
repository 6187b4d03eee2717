"""`python -m gitops_lab.agent [args]` = `gitops-lab agent run [args]`, without the CLI."""

import sys

from gitops_lab.agent.main import main

sys.exit(main())
