"""Registers the BOND lab (`gamescale.algorithms.lm.bond`): the algorithm registry imports
every subpackage of `gamescale.algorithms`, and this one imports the BOND module so that
`bond` is registered whether or not the `lm` package's `__init__` imports it."""

from __future__ import annotations

import gamescale.algorithms.lm.bond  # noqa: F401
