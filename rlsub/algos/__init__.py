"""Trainers (plug-ins of `rlsub.core.registry.TRAINERS`, each a `base.Trainer`): ES and
CMA-ES (in z), SB3 PPO/A2C/DQN with a subspace policy, supervised Adam, the paper's DQN;
Ray ES actors; policy replay. Each trainer also answers what the layers above ask of it
(its D, budget, checks, batched trials: `base`), so they never switch on its name.

Imports: core, nets, envs, data, rollout.
"""
