"""`python -m listener.models.train`: the training command line (see `cli`)."""

from listener.models.train.cli import main

raise SystemExit(main())
