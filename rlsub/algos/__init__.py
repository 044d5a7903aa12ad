"""Trainers (plug-ins of `rlsub.core.registry.TRAINERS`): ES and CMA-ES (in z), SB3
PPO/A2C/DQN with a subspace policy, supervised Adam; Ray ES actors; policy replay.

Imports: core, nets, envs, data, rollout.
"""
