"""`python -m rlsub ARGS`: the `rlsub` command."""

from rlsub.cli.main import main

raise SystemExit(main())
