"""The BOND task (2407.14622): a frozen reference policy, uniform prompts and a stated
true scoring rule. Registers `bond_task`; its torch code (`gamescale.envs.bond.task`) is
imported only when built."""

from __future__ import annotations

from gamescale.envs.bond.config import BondTaskConfig
from gamescale.envs.registry import register_env

register_env(
    "bond_task",
    BondTaskConfig,
    "gamescale.envs.bond.task:make_bond_task",
    "BOND: reference policy, prompts and a known true reward",
)

__all__ = ["BondTaskConfig"]
