"""PyTorch side of `npm run bench`: the moec model's training step, timed on this machine.

  python3 bench.py CONFIG.json
      Trains on seeded random tokens: `warmup` untimed steps, then `steps` timed ones. Prints one
      JSON line: tokens_per_s (from the mean), ms_per_step (mean), ms_per_step_min,
      ms_per_step_median, steps, threads, omp_wait_policy, torch, blas, matmul_gflops (1024³, this
      process), params, loss_first, loss_last.
  python3 bench.py --check WEIGHTS.safetensors TOKENS.bin CONFIG.json OUT.safetensors
      One forward/backward without dropout on the given weights and tokens (uint32 LE: B·T inputs,
      then B·T targets; 0xFFFFFFFF = ignored target; B = config batch). Writes `loss` (what the
      gradients are of: cross-entropy + balance weight × balance), `loss.ce`, `loss.balance`
      (unweighted, summed over MoE layers), `loss.balance.L` (MoE layer L's) and `grad.NAME` for
      every parameter, all F32. Prints one JSON line with the losses.

CONFIG: {model: {layers, width, heads, ffn, vocab, context, dropout, moe: null | {experts, top,
layers, normalize, balance, choice?: {group: batch|sequence, capacity}}}, batch, steps, warmup, lr,
wd, betas, eps, clip, seed, threads?}.
"""

import json
import os
import sys
import time

_MODEL_KEYS = ("layers", "width", "heads", "ffn", "vocab", "context", "dropout", "moe")
_MOE_KEYS = ("experts", "top", "layers", "normalize", "balance")
_TRAIN_KEYS = ("batch", "steps", "warmup", "lr", "wd", "betas", "eps", "clip", "seed")
_IGNORE = 0xFFFFFFFF


def fail(message):
    print(f"bench.py: {message}", file=sys.stderr)
    sys.exit(1)


def load_config(path):
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read config {path}: {e}")
    missing = [k for k in _TRAIN_KEYS + ("model",) if k not in cfg]
    missing += [f"model.{k}" for k in _MODEL_KEYS if k not in cfg.get("model", {})]
    moe = cfg.get("model", {}).get("moe")
    if moe is not None:
        missing += [f"model.moe.{k}" for k in _MOE_KEYS if k not in moe]
    if missing:
        fail(f"config {path} lacks {', '.join(missing)}")
    if cfg["steps"] < 1 or cfg["warmup"] < 0 or cfg["batch"] < 1:
        fail(f"config {path}: steps must be >= 1, warmup >= 0, batch >= 1")
    return cfg


def set_threads(cfg):
    """Threads before torch loads: OpenBLAS's pthread pool reads its variable only at load time.

    OpenMP workers sleep when idle (OMP_WAIT_POLICY=PASSIVE unless set): with GNU OpenMP's default
    spinning, torch's workers and OpenBLAS's pthreads fight over the cores, and on a machine with other
    load a step measured 5-30x slower (27 ms -> 760 ms for the quickstart model on 2 cores).
    """
    threads = cfg.get("threads") or len(os.sched_getaffinity(0))
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(threads)
    return threads


def blas_info():
    """The BLAS library torch's matmuls actually reach (Debian's torch links libblas.so.3, an alternative)."""
    import ctypes

    import torch

    torch.ones(64, 64) @ torch.ones(64, 64)
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if "blas" in line.lower() and ".so" in line})
    for lib in libs:
        if "openblas" in lib:
            try:
                so = ctypes.CDLL(lib)
                so.openblas_get_config.restype = ctypes.c_char_p
                return f"{so.openblas_get_config().decode().strip()} ({os.path.basename(lib)}, {so.openblas_get_num_threads()} threads)"
            except (OSError, AttributeError):
                return f"OpenBLAS ({os.path.basename(lib)})"
    build = [p for p in torch.__config__.show().split(", ") if p.startswith("BLAS_INFO")]
    return f"not OpenBLAS: {', '.join(os.path.basename(l) for l in libs) or 'no BLAS library loaded'} ({''.join(build)})"


def matmul_gflops(n=1024, reps=5):
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def bench(cfg):
    threads = set_threads(cfg)
    import torch

    from model import GPT, adamw

    m = cfg["model"]
    B, T, V = cfg["batch"], m["context"], m["vocab"]
    torch.manual_seed(cfg["seed"])  # dropout masks
    model = GPT(m)
    model.init_weights(cfg["seed"])
    model.train()
    opt = adamw(model, cfg["lr"], cfg["wd"], cfg["betas"], cfg["eps"])
    params = list(model.parameters())

    # All batches drawn up front so data generation stays outside the timed steps.
    total = cfg["warmup"] + cfg["steps"]
    g = torch.Generator().manual_seed(cfg["seed"] + 1)
    data = torch.randint(0, V, (total, B, T + 1), generator=g)

    def step(i):
        opt.zero_grad(set_to_none=True)
        _, losses = model(data[i, :, :-1], data[i, :, 1:])
        losses["loss"].backward()
        if cfg["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg["clip"])
        opt.step()
        return losses["loss"].detach()

    for i in range(cfg["warmup"]):
        step(i)
    times, losses = [], []
    for i in range(cfg["warmup"], total):
        t0 = time.perf_counter()
        losses.append(step(i))
        times.append(time.perf_counter() - t0)
    mean = sum(times) / len(times)
    return {
        "tokens_per_s": B * T / mean,
        "ms_per_step": mean * 1e3,
        "ms_per_step_min": min(times) * 1e3,
        "ms_per_step_median": sorted(times)[len(times) // 2] * 1e3,
        "steps": len(times),
        "threads": threads,
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "torch": torch.__version__,
        "blas": blas_info(),
        "matmul_gflops": matmul_gflops(),
        "params": sum(p.numel() for p in params),
        "loss_first": losses[0].item(),
        "loss_last": losses[-1].item(),
    }


def check(weights_path, tokens_path, cfg):
    """One forward/backward on given weights and tokens; returns the tensors to write and a summary."""
    threads = set_threads(cfg)
    import numpy as np
    import torch

    import safetensors_io
    from model import GPT

    m = cfg["model"]
    model = GPT(m)
    try:
        weights = safetensors_io.read(weights_path)
    except (OSError, ValueError) as e:
        fail(f"cannot read weights: {e}")
    extra = safetensors_io.copy_into(model, weights, weights_path, fail)
    own = dict(model.named_parameters())
    if extra:
        print(f"bench.py: ignoring {len(extra)} tensors that are not parameters: {', '.join(extra[:8])}", file=sys.stderr)

    tokens = np.fromfile(tokens_path, dtype="<u4")
    B = cfg["batch"]
    if tokens.size % (2 * B):
        fail(f"{tokens_path}: {tokens.size} tokens is not inputs + targets of batch {B}")
    T = tokens.size // (2 * B)
    if T > m["context"]:
        fail(f"{tokens_path}: sequence length {T} > context {m['context']}")
    inputs, targets = tokens[:B * T].astype(np.int64), tokens[B * T:].astype(np.int64)
    if inputs.max(initial=0) >= m["vocab"]:
        fail(f"{tokens_path}: input token {inputs.max()} >= vocab {m['vocab']}")
    targets[tokens[B * T:] == _IGNORE] = -100
    bad = (targets != -100) & ((targets < 0) | (targets >= m["vocab"]))
    if bad.any():
        fail(f"{tokens_path}: target token {targets[bad][0]} >= vocab {m['vocab']}")

    model.eval()  # no dropout; nothing else differs between train and eval
    _, losses = model(torch.from_numpy(inputs).view(B, T), torch.from_numpy(targets).view(B, T))
    losses["loss"].backward()
    out = {"loss": losses["loss"].detach().reshape(1).numpy(),
           "loss.ce": losses["ce"].detach().reshape(1).numpy(),
           "loss.balance": losses["balance"].detach().reshape(1).numpy()}
    for l, b in losses["balance_per_layer"].items():
        out[f"loss.balance.{l}"] = b.detach().reshape(1).numpy()
    for name, p in own.items():
        # An expert that received no token has no gradient: zero is its exact value.
        out[f"grad.{name}"] = (p.grad if p.grad is not None else torch.zeros_like(p)).numpy()
    summary = {"loss": out["loss"].item(), "ce": out["loss.ce"].item(), "balance": out["loss.balance"].item(),
               "tensors": len(own), "batch": B, "context": T, "threads": threads, "torch": torch.__version__}
    return out, summary


def main(argv):
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if len(argv) == 5 and argv[0] == "--check":
        weights, tokens, config, out_path = argv[1:]
        tensors, summary = check(weights, tokens, load_config(config))
        import safetensors_io

        safetensors_io.write(out_path, tensors, {"producer": "moec runtime/bench/torch/bench.py --check"})
        print(json.dumps(summary))
    elif len(argv) == 1 and not argv[0].startswith("-"):
        print(json.dumps(bench(load_config(argv[0]))))
    else:
        fail("usage: bench.py CONFIG.json | bench.py --check WEIGHTS.safetensors TOKENS.bin CONFIG.json OUT.safetensors")


if __name__ == "__main__":
    main(sys.argv[1:])
