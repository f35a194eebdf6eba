"""`python -m dimcollapse ...` is the same as the `dimcollapse` console script."""

from dimcollapse.cli import main

raise SystemExit(main())
