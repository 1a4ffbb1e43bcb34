"""The BOND task (2407.14622): a frozen reference policy, uniform prompts and a stated
true scoring rule. Registers `bond_task`."""

from __future__ import annotations

from gamescale.envs.bond.task import BondTask, BondTaskConfig, build_reference, make_bond_task, model_config
from gamescale.envs.registry import register_env

register_env("bond_task", BondTaskConfig, make_bond_task, "BOND: reference policy, prompts and a known true reward")

__all__ = ["BondTask", "BondTaskConfig", "build_reference", "make_bond_task", "model_config"]
