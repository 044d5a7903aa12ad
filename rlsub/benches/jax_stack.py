"""The JAX side of `rlsub bench jax`: evosax OpenAI-ES on gymnax CartPole-v1, CPU jax.

The stack a researcher would reach for instead of rlsub, on the workload of
configs/cartpole_es.yaml: a 4-20-20-2 tanh MLP (D = 562, argmax action),
OpenAI-ES (evosax 0.3.2 `Open_ES`: antithetic population 32, sigma 0.5,
centred-rank fitness shaping, optax Adam lr 0.2 after `add_decayed_weights(0.005)`,
i.e. the gradient -g + l2 z that rlsub's ES feeds to Adam), each member playing
2 episodes of gymnax CartPole-v1 (500 steps at most, return = steps survived).
ES runs over z with theta = theta0 + P z: P a dense Gaussian (D, d) matrix with
unit-norm columns, or P = I for the direct baseline (d = None), z starting at 0.
No observation normalisation (evosax's defaults aside, the plain stack).

Rollouts are one jitted `lax.scan` of 500 `env.step` calls, vmapped over members
x episodes; all members share the generation's 2 reset keys (common random
numbers, like evosax's GymnaxProblem). gymnax auto-resets inside `step`, so a
`done` flag carried through the scan masks the steps after each episode's end:
useful steps = sum of episode lengths, slot steps = members x episodes x 500.
Each `env.step` gets its own key, split ahead of the scan as evosax's GymnaxProblem
does (`step_keys=True`, the default). With `step_keys=False` every slot reuses one
key, which is sound here (the key only feeds the auto-reset, whose output is masked)
and lets XLA hoist gymnax's per-step key split and reset out of the loop: several
times faster, but not what the idiomatic stack runs. Stop rule as rlsub's: every 2
generations the centre plays 20 fresh episodes; stop once their mean >= 475, or
after 150 generations.

Compiled functions are cached per d within a process (theta0 and P are arguments),
so a sweep compiles once per distinct d; `compile_s` is the time spent tracing and
compiling them (ahead of time, via `jit(...).lower(...).compile()`). jax, evosax and
gymnax are imported lazily: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from functools import cache
from typing import Any

from rlsub.core.errors import RlsubError

SIZES = (4, 20, 20, 2)
D = sum(a * b + b for a, b in zip(SIZES[:-1], SIZES[1:], strict=True))  # 562
POPULATION = 32
EPISODES = 2
SIGMA = 0.5
LR = 0.2
L2 = 0.005
MAX_STEPS = 500
EVAL_EVERY = 2
EVAL_EPISODES = 20
SOLVED = 475.0
MAX_GENERATIONS = 150
STEP_KEYS = True  # a fresh key per env.step (the gymnax idiom); False: one per slot
MISSING = (
    "bench jax needs jax, evosax and gymnax: pip install -e '.[bench]' && "
    "pip install --no-deps gymnax==1.0.1"
)


def _modules() -> tuple[Any, Any, Any, Any, Any]:
    """(jax, jax.numpy, optax, evosax.algorithms, gymnax), or RlsubError if missing."""
    try:
        import evosax.algorithms
        import gymnax
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError as exc:
        raise RlsubError(MISSING) from exc
    return jax, jnp, optax, evosax.algorithms, gymnax


def _policy(jnp: Any, theta: Any, obs: Any) -> Any:
    """Argmax action of the tanh MLP whose flat parameters are theta (W then b per layer)."""
    h, i = obs, 0
    for k, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
        w = theta[i : i + n_in * n_out].reshape(n_out, n_in)
        b = theta[i + n_in * n_out : i + n_in * n_out + n_out]
        i += n_in * n_out + n_out
        h = w @ h + b
        if k < len(SIZES) - 2:
            h = jnp.tanh(h)
    return jnp.argmax(h)


def _episode_fn(jax: Any, jnp: Any, env: Any, env_params: Any, step_keys: bool) -> Any:
    """(theta, key) -> length of one CartPole episode (steps until done, at most 500)."""

    def episode(theta: Any, key: Any) -> Any:
        k_reset, k_scan = jax.random.split(key)
        obs, state = env.reset(k_reset, env_params)
        xs = jax.random.split(k_scan, MAX_STEPS) if step_keys else None

        def body(carry: Any, k_step: Any) -> Any:
            obs, state, alive, length = carry
            k_step = k_scan if k_step is None else k_step
            action = _policy(jnp, theta, obs)
            obs, state, _, terminated, truncated, _ = env.step(k_step, state, action, env_params)
            length = length + alive.astype(jnp.int32)
            return (obs, state, alive & ~(terminated | truncated), length), None

        init = (obs, state, jnp.array(True), jnp.array(0, jnp.int32))
        (_, _, _, length), _ = jax.lax.scan(body, init, xs, length=MAX_STEPS)
        return length

    return episode


@cache
def _build(d: int | None, step_keys: bool) -> dict[str, Any]:
    """Compiled setup / init / generation / eval functions for subspace d (None: direct)."""
    t0 = time.perf_counter()
    jax, jnp, optax, algorithms, gymnax = _modules()
    n = D if d is None else d
    env, env_params = gymnax.make("CartPole-v1")
    episode = _episode_fn(jax, jnp, env, env_params, step_keys)
    es = algorithms.Open_ES(
        population_size=POPULATION,
        solution=jnp.zeros(n),
        use_antithetic_sampling=True,
        optimizer=optax.chain(optax.add_decayed_weights(L2), optax.adam(LR)),
        std_schedule=optax.constant_schedule(SIGMA),
    )  # fitness shaping: centred ranks (the default); evosax minimises, so -return
    es_params = es.default_params

    def setup(key: Any) -> tuple[Any, Any]:
        """theta0 (PyTorch-style uniform init) and P (unit-norm Gaussian columns)."""
        k_theta, k_proj = jax.random.split(key)
        parts = []
        for k, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
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
        return es.init(key, jnp.zeros(n), es_params)

    def generation(state: Any, key: Any, theta0: Any, proj: Any) -> tuple[Any, Any]:
        k_ask, k_env, k_tell = jax.random.split(key, 3)
        population, state = es.ask(k_ask, state, es_params)
        thetas = to_theta(population, theta0, proj)
        keys = jax.random.split(k_env, EPISODES)
        per_member = jax.vmap(episode, in_axes=(None, 0))
        lengths = jax.vmap(per_member, in_axes=(0, None))(thetas, keys)  # (POP, EPISODES)
        fitness = lengths.mean(axis=1)
        state, _ = es.tell(k_tell, population, -fitness, state, es_params)
        return state, lengths.sum()

    def evaluate(z: Any, key: Any, theta0: Any, proj: Any) -> tuple[Any, Any]:
        keys = jax.random.split(key, EVAL_EPISODES)
        lengths = jax.vmap(episode, in_axes=(None, 0))(to_theta(z, theta0, proj), keys)
        return lengths.mean(), lengths.sum()

    key = jax.random.PRNGKey(0)
    f_setup = jax.jit(setup).lower(key).compile()
    theta0, proj = f_setup(key)
    f_init = jax.jit(init).lower(key).compile()
    state = f_init(key)
    f_gen = jax.jit(generation).lower(state, key, theta0, proj).compile()
    f_eval = jax.jit(evaluate).lower(state.mean, key, theta0, proj).compile()
    return {
        "jax": jax,
        "setup": f_setup,
        "init": f_init,
        "generation": f_gen,
        "evaluate": f_eval,
        "compile_s": time.perf_counter() - t0,
    }


def _start(
    d: int | None, seed: int, step_keys: bool
) -> tuple[dict[str, Any], float, Any, Any, Any, Any]:
    """Compiled functions (compile_s: 0 when cached), and a fresh trial from seed."""
    cached = _build.cache_info().currsize
    t0 = time.perf_counter()
    fns = _build(d, step_keys)
    compile_s = time.perf_counter() - t0 if _build.cache_info().currsize > cached else 0.0
    jax = fns["jax"]
    k_setup, k_init, k_loop = jax.random.split(jax.random.PRNGKey(seed), 3)
    theta0, proj = fns["setup"](k_setup)
    return fns, compile_s, fns["init"](k_init), k_loop, theta0, proj


def throughput(
    d: int | None, seconds: float = 10.0, seed: int = 0, step_keys: bool = STEP_KEYS
) -> dict[str, Any]:
    """ES generations (no eval, no stop) for about `seconds` of wall after the first one."""
    t0 = time.perf_counter()
    fns, _, state, key, theta0, proj = _start(d, seed, step_keys)
    jax, gen = fns["jax"], fns["generation"]
    state, useful = gen(state, jax.random.fold_in(key, 0), theta0, proj)
    int(useful)
    compile_s = time.perf_counter() - t0
    total, g = 0, 0
    w0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - w0 < seconds:
        g += 1
        state, useful = gen(state, jax.random.fold_in(key, g), theta0, proj)
        total += int(useful)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {
        "d": d,
        "step_keys": step_keys,
        "compile_s": compile_s,
        "generations": g,
        "useful_steps": total,
        "slot_steps": g * POPULATION * EPISODES * MAX_STEPS,
        "wall_s": wall,
        "cpu_s": cpu,
        "useful_per_cpu_s": total / cpu,
        "useful_per_wall_s": total / wall,
    }


def solve(d: int | None, seed: int) -> dict[str, Any]:
    """One trial from scratch with the stop rule; wall_s includes compiling (if not cached)."""
    t0 = time.perf_counter()
    fns, compile_s, state, key, theta0, proj = _start(d, seed, STEP_KEYS)
    jax, gen, evaluate = fns["jax"], fns["generation"], fns["evaluate"]
    useful, eval_steps, final, g = 0, 0, float("nan"), 0
    while g < MAX_GENERATIONS:
        k_gen, k_eval = jax.random.split(jax.random.fold_in(key, g))
        state, steps = gen(state, k_gen, theta0, proj)
        g += 1
        useful += int(steps)
        if g % EVAL_EVERY == 0 or g == MAX_GENERATIONS:
            mean, steps = evaluate(state.mean, k_eval, theta0, proj)
            final, eval_steps = float(mean), eval_steps + int(steps)
            if final >= SOLVED:
                break
    return {
        "d": d,
        "seed": seed,
        "generations": g,
        "final_eval_mean": final,
        "solved": final >= SOLVED,
        "wall_s": time.perf_counter() - t0,
        "compile_s": compile_s,
        "useful_steps": useful,
        "eval_steps": eval_steps,
        "slot_steps": g * POPULATION * EPISODES * MAX_STEPS,
    }


def _in_subprocess(code: str) -> tuple[dict[str, Any], float]:
    """`run_child` after checking that jax, evosax and gymnax import here (the install hint)."""
    _modules()  # fail here, with the install hint, rather than in the child
    return run_child(code)


def run_child(code: str) -> tuple[dict[str, Any], float]:
    """Run `code` (which prints one JSON line last) in a fresh interpreter: (dict, wall)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RlsubError(f"bench jax: subprocess failed: {tail[0]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, wall


def cold_solve(d: int | None, seed: int) -> dict[str, Any]:
    """`solve` in a fresh python process; process_wall_s includes `import jax`."""
    code = (
        "import json; from rlsub.benches.jax_stack import solve; "
        f"print(json.dumps(solve({d!r}, {seed!r})))"
    )
    result, wall = _in_subprocess(code)
    return result | {"process_wall_s": wall}


def _sweep_here(d_grid: tuple[int, ...], seeds: tuple[int, ...], baseline: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    grid: list[int | None] = [*d_grid, *([None] if baseline else [])]
    trials = [solve(d, s) for d in grid for s in seeds]
    return {
        "wall_s": time.perf_counter() - t0,
        "compile_s_total": sum(t["compile_s"] for t in trials),
        "trials": trials,
        "solved": sum(t["solved"] for t in trials),
    }


def sweep(
    d_grid: tuple[int, ...] = (1, 2, 4, 8, 16),
    seeds: tuple[int, ...] = (0, 1, 2),
    baseline: bool = True,
) -> dict[str, Any]:
    """Every (d, seed) trial (plus direct per seed) in one fresh process, compiles included."""
    code = (
        "import json; from rlsub.benches.jax_stack import _sweep_here; "
        f"print(json.dumps(_sweep_here({tuple(d_grid)!r}, {tuple(seeds)!r}, {baseline!r})))"
    )
    result, wall = _in_subprocess(code)
    return result | {"process_wall_s": wall}


def raw_env_steps_per_s(
    slots: int = 256, steps: int = 500, step_keys: bool = STEP_KEYS
) -> dict[str, Any]:
    """gymnax CartPole `step` with constant action 0, vmapped over slots, scanned, jitted."""
    jax, jnp, _, _, gymnax = _modules()
    env, env_params = gymnax.make("CartPole-v1")

    def run(key: Any) -> Any:
        keys = jax.random.split(key, slots)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, env_params)
        step = jax.vmap(env.step, in_axes=(0, 0, None, None))
        action = jnp.array(0, jnp.int32)

        xs = jax.random.split(key, (steps, slots)) if step_keys else None

        def body(carry: Any, k_step: Any) -> Any:
            k_step = keys if k_step is None else k_step
            obs, state = step(k_step, carry[1], action, env_params)[:2]
            return (obs, state), None

        (obs, _), _ = jax.lax.scan(body, (obs, state), xs, length=steps)
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
        "slots": slots,
        "step_keys": step_keys,
        "steps": steps,
        "compile_s": compile_s,
        "env_steps": total,
        "wall_s": wall,
        "cpu_s": cpu,
        "steps_per_s": total / wall,
        "steps_per_cpu_s": total / cpu,
    }
