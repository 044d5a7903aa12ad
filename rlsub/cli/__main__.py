"""`python -m rlsub.cli ARGS`, as the `rlsub` script."""

from rlsub.cli.main import main

raise SystemExit(main())
