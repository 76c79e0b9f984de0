"""PyTorch side of `npm run bench -- --only patch`: the patch model of Chen et al. 2022, timed.

  python3 patch.py CONFIG.json

CONFIG: {samples, patches, dim, experts, filters, min_seconds, lr, router_lr}. One full-batch step
on `samples` seeded random samples: router logits from the patch sum plus U(0, 1) noise, top-1, the
softmax gate, the chosen expert's filters on every patch with a cubic activation, logistic loss;
backward; normalised gradient descent per expert, plain SGD on the router. Each expert computes
only its own samples (index_select, as moec's kernels read only them). Prints one JSON line:
samples_per_s, ms_per_step, steps, threads, torch.
"""

import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402


def main():
    with open(sys.argv[1]) as f:
        c = json.load(f)
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    B, P, D, M, J = c["samples"], c["patches"], c["dim"], c["experts"], c["filters"]
    x = torch.randn(B, P, D, generator=g)
    y = torch.randint(0, 2, (B,), generator=g).float() * 2 - 1
    bound = 0.001 / D ** 0.5
    W = (torch.rand(M, J, D, generator=g) * 2 - 1).mul_(bound).requires_grad_()
    theta = torch.zeros(D, M, requires_grad=True)

    def step():
        h = x.sum(1) @ theta
        sel = (h + torch.rand(B, M)).argmax(1)
        gate = torch.softmax(h, 1).gather(1, sel[:, None])[:, 0]
        out = torch.empty(B)
        parts = []
        for m in range(M):
            idx = (sel == m).nonzero()[:, 0]
            xm = x.index_select(0, idx)
            f = (torch.einsum("bpd,jd->bpj", xm, W[m]) ** 3).sum((1, 2))
            parts.append((idx, f))
        f_all = torch.zeros(B).index_put((torch.cat([p[0] for p in parts]),), torch.cat([p[1] for p in parts]))
        out = gate * f_all
        loss = torch.nn.functional.softplus(-y * out).mean()
        W.grad = None
        theta.grad = None
        loss.backward()
        with torch.no_grad():
            norms = W.grad.flatten(1).norm(dim=1).clamp_min(1e-30)
            nz = (W.grad.flatten(1).abs().amax(1) > 0).float()
            W.sub_(c["lr"] * W.grad / norms[:, None, None] * nz[:, None, None])
            theta.sub_(c["router_lr"] * theta.grad)
        return loss

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    step()
    one = max(1e-4, time.perf_counter() - t0)
    n = max(3, int(c["min_seconds"] / one) + 1)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    secs = time.perf_counter() - t0
    print(json.dumps({"samples_per_s": n * B / secs, "ms_per_step": 1000 * secs / n, "steps": n, "threads": threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
