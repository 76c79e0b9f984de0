"""PyTorch side of the training-tracking check: a whole short training run on moec's weights and batches.

usage: track.py WEIGHTS.safetensors BATCHES.bin CONFIG.json OUT.json

With CONFIG.export (moec's full moe settings, any sparse routing design) the model is the export's
runtime/export/modeling_moec.py, loaded with moec's own (stacked-expert) names, and the loss adds
balance·Σ balance + zloss·Σ z over its routing layers; otherwise it is model.py (token routing).

BATCHES.bin: for each step, B·T input ids then B·T target ids (little-endian u32; 0xffffffff =
ignored target). CONFIG: {model: as bench.py, batch, lrs: [lr per step], wd, betas, eps, clip,
break: null | "decay-all"}. Dropout is off. Each step: forward, backward, global-norm clip,
AdamW (decay on tensors of two or more dimensions, bias-corrected, as moec). OUT: {losses: [...]},
the loss of each step before its update, as moec's train_loss reports it.

`break` is a deliberate optimiser error for the test that shows the comparison catches one:
"decay-all" decays every tensor (LayerNorm gains and biases too); "clip-per-tensor" clips each
tensor's own norm instead of the global one; "no-bias-correction" drops Adam's bias correction
(by scaling each step's lr by (1 − β1^t)/√(1 − β2^t), which also scales the decay).
"""

import json
import os
import sys

_IGNORE = 0xFFFFFFFF


def fail(message):
    print(f"track.py: {message}", file=sys.stderr)
    sys.exit(2)


def export_model(m, moe):
    """The export's model for moec's settings and its training loss (cross-entropy + weighted aux losses)."""
    import torch.nn.functional as F

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "export"))
    from modeling_moec import MoecConfig, MoecForCausalLM

    config = MoecConfig(vocab_size=m["vocab"], n_positions=m["context"], n_embd=m["width"], n_layer=m["layers"],
                        n_head=m["heads"], n_inner=m["ffn"], layer_norm_epsilon=1e-5, moe=moe)
    model = MoecForCausalLM(config)

    def loss_of(inputs, targets):
        out = model(inputs)
        ce = F.cross_entropy(out["logits"].reshape(-1, m["vocab"]), targets.reshape(-1), ignore_index=-100)
        aux = sum(moe["balance"] * a["balance"] + moe["zloss"] * a["z"] for a in out["aux"].values())
        return ce + aux

    return model, loss_of


def main(argv):
    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if len(argv) != 4:
        fail("usage: track.py WEIGHTS.safetensors BATCHES.bin CONFIG.json OUT.json")
    weights_path, batches_path, config_path, out_path = argv
    with open(config_path) as f:
        cfg = json.load(f)
    threads = int(os.environ.get("MOEC_TORCH_THREADS", "1"))
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    import safetensors_io
    from model import GPT

    m = cfg["model"]
    if m.get("dropout", 0) != 0:
        fail("model.dropout must be 0: the two runs cannot draw the same dropout masks")
    export = cfg.get("export")
    if export is not None:
        model, loss_of = export_model(m, export)
    else:
        model = GPT(m)

        def loss_of(inputs, targets):
            return model(inputs, targets)[1]["loss"]
    weights = safetensors_io.read(weights_path)
    if export is not None:
        weights = {f"transformer.{k}": v for k, v in weights.items()}
    safetensors_io.copy_into(model, weights, weights_path, fail)
    own = dict(model.named_parameters())

    B, T, lrs = cfg["batch"], m["context"], cfg["lrs"]
    data = np.fromfile(batches_path, dtype="<u4")
    if data.size != len(lrs) * 2 * B * T:
        fail(f"{batches_path}: {data.size} ids, {len(lrs)} steps of batch {B} × context {T} need {len(lrs) * 2 * B * T}")
    data = data.reshape(len(lrs), 2, B, T)

    broken = cfg.get("break")
    if broken not in (None, "decay-all", "clip-per-tensor", "no-bias-correction"):
        fail(f"unknown break {broken!r}")
    params = list(model.parameters())
    # moec decays matrices; stacked expert biases (E, out) and the cosine router's scale are exempt.
    decays = {n: broken == "decay-all" or (p.dim() >= 2 and not n.endswith(".bias")) for n, p in own.items()}
    decay = [p for n, p in own.items() if decays[n]]
    rest = [p for n, p in own.items() if not decays[n]]
    groups = [{"params": decay, "weight_decay": cfg["wd"]}] + ([{"params": rest, "weight_decay": 0.0}] if rest else [])
    opt = torch.optim.AdamW(groups, lr=lrs[0], betas=tuple(cfg["betas"]), eps=cfg["eps"])

    model.eval()  # dropout off; nothing else differs between train and eval
    losses = []
    for step, lr in enumerate(lrs):
        inputs = torch.from_numpy(data[step, 0].astype(np.int64))
        t = data[step, 1].astype(np.int64)
        t[data[step, 1] == _IGNORE] = -100
        if broken == "no-bias-correction":
            b1, b2 = cfg["betas"]
            lr = lr * (1 - b1 ** (step + 1)) / (1 - b2 ** (step + 1)) ** 0.5
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = loss_of(inputs, torch.from_numpy(t))
        loss.backward()
        if cfg["clip"] > 0 and broken == "clip-per-tensor":
            for p in params:
                torch.nn.utils.clip_grad_norm_([p], cfg["clip"])
        elif cfg["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg["clip"])
        opt.step()
        losses.append(loss.item())
    with open(out_path, "w") as f:
        json.dump({"losses": losses, "torch": torch.__version__, "threads": threads}, f)


if __name__ == "__main__":
    main(sys.argv[1:])
