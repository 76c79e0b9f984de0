"""An independent GPT-2 that follows Hugging Face's GPT2LMHeadModel conventions exactly, to check
`moec export --format hf` where transformers is not installable (Debian bookworm has no package):

- reads config.json as GPT2Config does (n_embd, n_layer, n_head, n_inner or 4*n_embd, n_positions,
  layer_norm_epsilon, activation_function, which must be gelu_new);
- loads model.safetensors by HF's names: transformer.wte.weight, transformer.wpe.weight,
  transformer.h.N.{ln_1,attn.c_attn,attn.c_proj,ln_2,mlp.c_fc,mlp.c_proj}.{weight,bias},
  transformer.ln_f.{weight,bias}; Conv1D weights are (in, out) and y = x @ W + b; the lm_head is
  tied to wte (HF checkpoints of tied models leave lm_head.weight out); any other tensor is an error;
- eager attention: q·kᵀ / sqrt(head_dim), causal mask, softmax, @ v (HF's default scale_attn_weights).
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "runtime", "export"))
from modeling_moec import read_safetensors  # noqa: E402  (a plain safetensors reader)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def conv1d(x, w, b):
    # transformers.pytorch_utils.Conv1D: torch.addmm(bias, x.view(-1, nx), weight)
    return torch.addmm(b, x.reshape(-1, x.shape[-1]), w).view(*x.shape[:-1], w.shape[1])


def logits(directory, ids):
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    assert cfg["model_type"] == "gpt2" and cfg["architectures"] == ["GPT2LMHeadModel"], cfg.get("model_type")
    assert cfg["activation_function"] == "gelu_new", cfg["activation_function"]
    w = {k: v.float() for k, v in read_safetensors(os.path.join(directory, "model.safetensors")).items()}
    C, L, H = cfg["n_embd"], cfg["n_layer"], cfg["n_head"]
    inner = cfg.get("n_inner") or 4 * C
    eps = cfg["layer_norm_epsilon"]
    expected = {"transformer.wte.weight": (cfg["vocab_size"], C), "transformer.wpe.weight": (cfg["n_positions"], C),
                "transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,)}
    for l in range(L):
        p = f"transformer.h.{l}."
        expected.update({p + "ln_1.weight": (C,), p + "ln_1.bias": (C,), p + "ln_2.weight": (C,), p + "ln_2.bias": (C,),
                         p + "attn.c_attn.weight": (C, 3 * C), p + "attn.c_attn.bias": (3 * C,),
                         p + "attn.c_proj.weight": (C, C), p + "attn.c_proj.bias": (C,),
                         p + "mlp.c_fc.weight": (C, inner), p + "mlp.c_fc.bias": (inner,),
                         p + "mlp.c_proj.weight": (inner, C), p + "mlp.c_proj.bias": (C,)})
    got = {k: tuple(v.shape) for k, v in w.items()}
    assert got == expected, f"tensor names/shapes differ from GPT-2's: extra {sorted(set(got) - set(expected))}, missing {sorted(set(expected) - set(got))}, " \
        f"shapes {[(k, got[k], expected[k]) for k in got if k in expected and got[k] != expected[k]]}"
    B, T = ids.shape
    hd = C // H
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][torch.arange(T)]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        p = f"transformer.h.{l}."
        a = F.layer_norm(x, (C,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        q, k, v = conv1d(a, w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"]).split(C, dim=2)
        q, k, v = (t.view(B, T, H, hd).permute(0, 2, 1, 3) for t in (q, k, v))
        att = torch.matmul(q, k.transpose(-1, -2)) / (v.size(-1) ** 0.5)
        att = torch.where(mask, att, torch.tensor(torch.finfo(att.dtype).min)).softmax(dim=-1)
        y = torch.matmul(att, v).permute(0, 2, 1, 3).reshape(B, T, C)
        x = x + conv1d(y, w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"])
        m = F.layer_norm(x, (C,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        x = x + conv1d(gelu_new(conv1d(m, w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"])), w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (C,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return x @ w["transformer.wte.weight"].t()
