"""Hypothesis profiles: `quick` by default (a few hundred cases in all, for `tox -e unit` and the toolkit's
own GitLab job), `ci` for `make test` (HYPOTHESIS_PROFILE=ci: 600 per target, 5,400 across the nine targets;
1,200 before the fault matrix needed the CI time).

The deadline is generous on purpose: it is there to catch a hang or a runaway parse, not to time the code
(speed is measured in benchmarks/), and CI machines are shared."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": 10_000, "suppress_health_check": [HealthCheck.too_slow], "derandomize": False}
settings.register_profile("quick", max_examples=150, **_COMMON)
settings.register_profile("ci", max_examples=600, print_blob=True, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))
