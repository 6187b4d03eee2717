"""`python -m gitops_lab …` = the `gitops-lab` command (cli.py)."""

from gitops_lab.cli import main

raise SystemExit(main())
