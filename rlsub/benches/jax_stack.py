"""The JAX side of `rlsub bench jax`: evosax OpenAI-ES on gymnax classic control, CPU jax,
written as a JAX user would write it for speed.

The workload of configs/cartpole_es.yaml on any of `ENVS` (CartPole-v1, Acrobot-v1,
Pendulum-v1, MountainCar-v0): an obs-20-20-out tanh MLP (argmax action, or the output
clipped to the torque box), OpenAI-ES (evosax 0.3.2 `Open_ES`: antithetic population 32,
sigma 0.5, centred-rank fitness shaping, optax Adam lr 0.2 after
`add_decayed_weights(0.005)`, i.e. the gradient -g + l2 z that rlsub's ES feeds to Adam),
each member playing 2 episodes (common reset keys), observation normalisation as rlsub's
(running mean and variance of the observations of live steps, folded in after each
generation; inputs clipped to +-5). ES runs over z with theta = theta0 + P z: P a dense
Gaussian (D, d) matrix with unit-norm columns, or P = I for the direct baseline
(d = None), z starting at 0.

One whole generation (ask, rollouts, statistics, tell) is one jitted function. The
rollout calls gymnax's `step_env` (no auto-reset: nothing to mask but the steps after an
episode's end) with one key per slot, which XLA hoists out of the loop. Two loops
(`VARIANTS`), both compiled and timed, the faster one counted:

- ``scan``: `lax.scan` over the episode cap, vmapped over members x episodes, a done mask
  (every slot steps to the cap);
- ``while``: all slots stepped together in a `lax.while_loop` that stops when the last
  episode ends (fewer steps when every episode of a generation is short).

The old loop of this bench (gymnax's auto-resetting `env.step` with a key split per step)
was about 4x slower than ``scan`` (issue 27). XLA runs on one thread (`XLA_FLAGS`, set by
`single_thread` before jax is imported): its CPU-seconds per step are lowest so. The
stop rule of `solve` is rlsub's: every 2 generations the centre plays 20 fresh episodes
(frozen statistics); stop once their mean >= the solved score, or after 150 generations.

Compiled functions are cached per (env, d, variant) within a process; `compile_s` is the
time spent tracing and compiling them (`jit(...).lower(...).compile()`). jax, evosax and
gymnax are imported lazily: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from rlsub.core.errors import RlsubError


@dataclass(frozen=True)
class JaxEnv:
    """A gymnax env as the bench plays it: sizes of its MLP, its action, its episode cap."""

    sizes: tuple[int, ...]
    discrete: bool
    max_steps: int
    high: float = 0.0  # box actions: the output is clipped to +-high
    solved: float = float("inf")


ENVS = {
    "CartPole-v1": JaxEnv((4, 20, 20, 2), True, 500, solved=475.0),
    "Acrobot-v1": JaxEnv((6, 20, 20, 3), True, 500),
    "Pendulum-v1": JaxEnv((3, 20, 20, 1), False, 200, high=2.0),
    "MountainCar-v0": JaxEnv((2, 20, 20, 3), True, 200),
}
VARIANTS = ("scan", "while")
POPULATION = 32
EPISODES = 2
SIGMA = 0.5
LR = 0.2
L2 = 0.005
OBS_CLIP = 5.0
EVAL_EVERY = 2
EVAL_EPISODES = 20
MAX_GENERATIONS = 150
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
MISSING = (
    "bench jax needs jax, evosax and gymnax: pip install -e '.[bench]' && "
    "pip install --no-deps gymnax==1.0.1"
)


def n_params(sizes: tuple[int, ...]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def single_thread() -> bool:
    """Put XLA on one thread (before jax is imported; True if it is so now)."""
    if "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + XLA_ONE_THREAD).strip()
    return XLA_ONE_THREAD in os.environ.get("XLA_FLAGS", "")


def _modules() -> tuple[Any, Any, Any, Any, Any]:
    """(jax, jax.numpy, optax, evosax.algorithms, gymnax), or RlsubError if missing."""
    single_thread()
    try:
        import evosax.algorithms
        import gymnax
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError as exc:
        raise RlsubError(MISSING) from exc
    return jax, jnp, optax, evosax.algorithms, gymnax


def _policy(jnp: Any, spec: JaxEnv, theta: Any, x: Any) -> Any:
    """The action of the tanh MLP whose flat parameters are theta (W then b per layer)."""
    h, i, sizes = x, 0, spec.sizes
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = theta[i : i + n_in * n_out].reshape(n_out, n_in)
        b = theta[i + n_in * n_out : i + n_in * n_out + n_out]
        i += n_in * n_out + n_out
        h = w @ h + b
        if k < len(sizes) - 2:
            h = jnp.tanh(h)
    return jnp.argmax(h) if spec.discrete else jnp.clip(h, -spec.high, spec.high)


def _rollout_fn(jax: Any, jnp: Any, env: Any, params: Any, spec: JaxEnv, variant: str) -> Any:
    """(thetas (M, D), keys (E, 2), mean, inv_std) -> (returns (M, E), lengths (M, E),
    observation sum, sum of squares, count) over the steps played."""

    def act(theta: Any, obs: Any, mean: Any, inv_std: Any) -> Any:
        return _policy(jnp, spec, theta, jnp.clip((obs - mean) * inv_std, -OBS_CLIP, OBS_CLIP))

    def scan_rollout(thetas: Any, keys: Any, mean: Any, inv_std: Any) -> Any:
        def episode(theta: Any, key: Any) -> Any:
            obs, state = env.reset_env(key, params)

            def body(c: Any, _: Any) -> Any:
                obs, state, alive, ret, length, s1, s2 = c
                obs2, state, r, done, _ = env.step_env(key, state, act(theta, obs, mean, inv_std), params)  # fmt: skip
                live = alive.astype(jnp.float32)
                return (obs2, state, alive & ~done, ret + live * r, length + alive,
                        s1 + live * obs, s2 + live * obs * obs), None  # fmt: skip

            z = jnp.zeros_like(obs)
            init = (obs, state, jnp.array(True), jnp.float32(0), jnp.int32(0), z, z)
            c, _ = jax.lax.scan(body, init, None, length=spec.max_steps)
            return c[3], c[4], c[5], c[6]

        per_member = jax.vmap(episode, in_axes=(None, 0))
        rets, lens, s1, s2 = jax.vmap(per_member, in_axes=(0, None))(thetas, keys)
        return rets, lens, s1.sum((0, 1)), s2.sum((0, 1)), lens.sum()

    def while_rollout(thetas: Any, keys: Any, mean: Any, inv_std: Any) -> Any:
        M, E = thetas.shape[0], keys.shape[0]
        th = jnp.repeat(thetas, E, axis=0)  # slot i * E + k: member i, episode k
        ks = jnp.tile(keys, (M, 1))
        obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(ks, params)
        step = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))
        policy = jax.vmap(act, in_axes=(0, 0, None, None))

        def cond(c: Any) -> Any:
            return (c[0] < spec.max_steps) & c[3].any()

        def body(c: Any) -> Any:
            t, obs, state, alive, ret, length, s1, s2 = c
            obs2, state, r, done, _ = step(ks, state, policy(th, obs, mean, inv_std), params)
            live = alive.astype(jnp.float32)
            return (t + 1, obs2, state, alive & ~done, ret + live * r, length + alive,
                    s1 + live @ obs, s2 + live @ (obs * obs))  # fmt: skip

        S = M * E
        z = jnp.zeros(obs.shape[1:], obs.dtype)
        alive, ret, length = jnp.ones(S, bool), jnp.zeros(S), jnp.zeros(S, jnp.int32)
        init = (jnp.int32(0), obs, state, alive, ret, length, z, z)
        c = jax.lax.while_loop(cond, body, init)
        return c[4].reshape(M, E), c[5].reshape(M, E), c[6], c[7], c[5].sum()

    return scan_rollout if variant == "scan" else while_rollout


def _fold(norm: Any, s1: Any, s2: Any, n: Any) -> Any:
    """rlsub.rollout.slots.RunningNorm.update_moments on (mean, var, count)."""
    mean, var, count = norm
    n = n.astype(mean.dtype)
    safe = n + (n == 0)
    b_mean = s1 / safe
    b_var = s2 / safe - b_mean * b_mean
    delta = b_mean - mean
    total = count + n
    new_mean = mean + delta * n / total
    m2 = var * count + b_var * n + delta * delta * count * n / total
    return (new_mean, m2 / total, total)


@cache
def _build(env_id: str, d: int | None, variant: str) -> dict[str, Any]:
    """Compiled setup / init / generation / eval functions for (env, subspace d, variant)."""
    t0 = time.perf_counter()
    jax, jnp, optax, algorithms, gymnax = _modules()
    spec = ENVS[env_id]
    D = n_params(spec.sizes)
    n = D if d is None else d
    env, env_params = gymnax.make(env_id)
    rollout = _rollout_fn(jax, jnp, env, env_params, spec, variant)
    es = algorithms.Open_ES(
        population_size=POPULATION,
        solution=jnp.zeros(n),
        use_antithetic_sampling=True,
        optimizer=optax.chain(optax.add_decayed_weights(L2), optax.adam(LR)),
        std_schedule=optax.constant_schedule(SIGMA),
    )  # fitness shaping: centred ranks (the default); evosax minimises, so -return
    es_params = es.default_params
    n_obs = spec.sizes[0]

    def setup(key: Any) -> tuple[Any, Any]:
        """theta0 (PyTorch-style uniform init) and P (unit-norm Gaussian columns)."""
        k_theta, k_proj = jax.random.split(key)
        parts = []
        for k, (n_in, n_out) in enumerate(zip(spec.sizes[:-1], spec.sizes[1:], strict=True)):
            bound = 1.0 / n_in**0.5
            kw, kb = jax.random.split(jax.random.fold_in(k_theta, k))
            parts.append(jax.random.uniform(kw, (n_out * n_in,), minval=-bound, maxval=bound))
            parts.append(jax.random.uniform(kb, (n_out,), minval=-bound, maxval=bound))
        theta0 = jnp.concatenate(parts)
        if d is None:
            return theta0, jnp.zeros((0,))
        proj = jax.random.normal(k_proj, (D, d))
        return theta0, proj / jnp.linalg.norm(proj, axis=0, keepdims=True)

    def to_theta(z: Any, theta0: Any, proj: Any) -> Any:
        return theta0 + (z if d is None else z @ proj.T)

    def init(key: Any) -> Any:
        norm = (jnp.zeros(n_obs), jnp.ones(n_obs), jnp.float32(1e-4))
        return es.init(key, jnp.zeros(n), es_params), norm

    def inv_std(norm: Any) -> Any:
        return 1.0 / jnp.sqrt(norm[1] + 1e-8)

    def generation(carry: Any, key: Any, theta0: Any, proj: Any) -> tuple[Any, Any]:
        state, norm = carry
        k_ask, k_env, k_tell = jax.random.split(key, 3)
        population, state = es.ask(k_ask, state, es_params)
        keys = jax.random.split(k_env, EPISODES)
        thetas = to_theta(population, theta0, proj)
        rets, lens, s1, s2, count = rollout(thetas, keys, norm[0], inv_std(norm))
        state, _ = es.tell(k_tell, population, -rets.mean(axis=1), state, es_params)
        return (state, _fold(norm, s1, s2, count)), lens.sum()

    def evaluate(carry: Any, key: Any, theta0: Any, proj: Any) -> tuple[Any, Any]:
        state, norm = carry
        keys = jax.random.split(key, EVAL_EPISODES)
        theta = to_theta(state.mean, theta0, proj)[None]
        rets, lens, *_ = rollout(theta, keys, norm[0], inv_std(norm))
        return rets.mean(), lens.sum()

    key = jax.random.PRNGKey(0)
    f_setup = jax.jit(setup).lower(key).compile()
    theta0, proj = f_setup(key)
    f_init = jax.jit(init).lower(key).compile()
    carry = f_init(key)
    f_gen = jax.jit(generation).lower(carry, key, theta0, proj).compile()
    f_eval = jax.jit(evaluate).lower(carry, key, theta0, proj).compile()
    return {
        "jax": jax,
        "spec": spec,
        "setup": f_setup,
        "init": f_init,
        "generation": f_gen,
        "evaluate": f_eval,
        "compile_s": time.perf_counter() - t0,
    }


class Trial:
    """One ES run of (env, d, variant) from `seed`; `generation()` plays one generation."""

    def __init__(self, env_id: str, d: int | None, variant: str, seed: int = 0) -> None:
        cached = _build.cache_info().currsize
        t0 = time.perf_counter()
        self.fns = _build(env_id, d, variant)
        built = _build.cache_info().currsize > cached
        self.compile_s = time.perf_counter() - t0 if built else 0.0
        jax = self.jax = self.fns["jax"]
        k_setup, k_init, self.key = jax.random.split(jax.random.PRNGKey(seed), 3)
        self.theta0, self.proj = self.fns["setup"](k_setup)
        self.carry = self.fns["init"](k_init)
        self.g = 0

    def generation(self) -> int:
        """One generation; its useful env steps (sum of the episode lengths)."""
        k = self.jax.random.fold_in(self.key, self.g)
        self.carry, useful = self.fns["generation"](self.carry, k, self.theta0, self.proj)
        self.g += 1
        return int(useful)

    def evaluate(self) -> tuple[float, int]:
        k = self.jax.random.fold_in(self.jax.random.fold_in(self.key, self.g), 1 << 20)
        mean, steps = self.fns["evaluate"](self.carry, k, self.theta0, self.proj)
        return float(mean), int(steps)


def solve(d: int | None, seed: int, variant: str = "scan", env_id: str = "CartPole-v1") -> dict:
    """One trial from scratch with the stop rule; wall_s includes compiling (if not cached)."""
    t0 = time.perf_counter()
    trial = Trial(env_id, d, variant, seed)
    solved_at = trial.fns["spec"].solved
    useful, eval_steps, final = 0, 0, float("nan")
    while trial.g < MAX_GENERATIONS:
        useful += trial.generation()
        if trial.g % EVAL_EVERY == 0 or trial.g == MAX_GENERATIONS:
            final, steps = trial.evaluate()
            eval_steps += steps
            if final >= solved_at:
                break
    return {
        "env": env_id,
        "d": d,
        "seed": seed,
        "variant": variant,
        "generations": trial.g,
        "final_eval_mean": final,
        "solved": final >= solved_at,
        "wall_s": time.perf_counter() - t0,
        "compile_s": trial.compile_s,
        "useful_steps": useful,
        "eval_steps": eval_steps,
    }


def sweep_here(
    d_grid: tuple[int, ...], seeds: tuple[int, ...], baseline: bool, variant: str
) -> dict[str, Any]:
    t0 = time.perf_counter()
    grid: list[int | None] = [*d_grid, *([None] if baseline else [])]
    trials = [solve(d, s, variant) for d in grid for s in seeds]
    return {
        "wall_s": time.perf_counter() - t0,
        "compile_s_total": sum(t["compile_s"] for t in trials),
        "trials": trials,
        "solved": sum(t["solved"] for t in trials),
    }


def raw_env_steps_per_s(env_id: str = "CartPole-v1", slots: int = 256) -> dict[str, Any]:
    """gymnax `step_env` with a constant action, vmapped over slots, scanned over the
    episode cap, jitted; CPU-seconds."""
    jax, jnp, _, _, gymnax = _modules()
    env, env_params = gymnax.make(env_id)
    spec = ENVS[env_id]
    steps = spec.max_steps

    def run(key: Any) -> Any:
        keys = jax.random.split(key, slots)
        obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(keys, env_params)
        step = jax.vmap(env.step_env, in_axes=(0, 0, None, None))
        action = jnp.array(0, jnp.int32) if spec.discrete else jnp.zeros(1)

        def body(carry: Any, _: Any) -> Any:
            obs, state = step(keys, carry[1], action, env_params)[:2]
            return (obs, state), None

        (obs, _), _ = jax.lax.scan(body, (obs, state), None, length=steps)
        return obs.sum()

    t0 = time.perf_counter()
    key = jax.random.PRNGKey(0)
    fn = jax.jit(run).lower(key).compile()
    float(fn(key))
    compile_s = time.perf_counter() - t0
    reps = 0
    w0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - w0 < 2.0:
        reps += 1
        float(fn(jax.random.PRNGKey(reps)))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    total = reps * slots * steps
    return {
        "env": env_id,
        "slots": slots,
        "steps": steps,
        "compile_s": compile_s,
        "env_steps": total,
        "wall_s": wall,
        "cpu_s": cpu,
        "steps_per_s": total / wall,
        "steps_per_cpu_s": total / cpu,
    }
