"""A moec language model (GPT-2 blocks, dense or Mixture-of-Experts FFNs) in plain PyTorch.

Written by `moec export` beside config.json and model.safetensors. It computes moec's evaluation
forward pass (no dropout, no router noise, no sampled second expert: those act while training only):

    x = wte[ids] + wpe[:T]
    per block: x = x + attn(ln_1(x)); x = x + ffn(ln_2(x))      (pre-LayerNorm, eps 1e-5)
    logits = ln_f(x) @ wte.T                                        (tied head)

Linear layers are GPT-2 Conv1D: weight (in, out), y = x @ W + b. GELU is the tanh form (gelu_new).
An MoE FFN routes each token (unit token) or each sequence (unit sequence: the mean of its first
`prefix` hidden states) to `top` of `experts` experts:

    router learned | frozen: logits = x @ router.weight
    router cosine:           logits = cos(x @ proj, embedding[:, e]) * exp(log_scale)
    router random:           moec's hashed draw at evaluation (seed 0, step 0), per token position
    router label:            experts (label + k) mod E, gates 1/top (pass route_labels, one per sequence)
    router hash:             fixed experts per token id (Roller et al. 2021): moec's hash of (layer, id·top + k), gates 1/top
    gate softmax-topk | topk-softmax | sigmoid, `normalize` renormalises the kept gates;
    capacity: ceil(capacity * N * top / experts) slots per expert over the N tokens of the batch,
    filled by all first choices in token order, then all second choices, ...; the rest are dropped
    (dropless: no limit). Shared experts (GELU MLPs) add to every token with weight 1.
    scope global: the first MoE layer routes, every MoE layer uses that decision.
    The output's .aux holds each routing layer's unweighted balance and z losses (moec's
    definitions), for training it (runtime/bench/torch/track.py) without transformers.

Expert weights are stacked per layer: experts.c_fc.weight (E, C, F), experts.c_proj.weight (E, F, C)
(or experts.proj.weight (E, C, C) for linear experts). Capacity and sequence pooling depend on the
whole batch and window, as in moec: the logits equal moec's for the same batch.

Load it with plain PyTorch:

    import sys; sys.path.insert(0, EXPORT_DIR)
    from modeling_moec import MoecForCausalLM
    model = MoecForCausalLM.from_pretrained(EXPORT_DIR)
    logits = model(input_ids).logits

Where `transformers` is installed, the same file is a remote-code model:
AutoModelForCausalLM.from_pretrained(EXPORT_DIR, trust_remote_code=True).
"""

import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

try:  # transformers is optional: with it, the classes are a PreTrainedModel and its config.
    from transformers import PretrainedConfig, PreTrainedModel
    from transformers.modeling_outputs import CausalLMOutput
except ImportError:  # plain PyTorch
    PretrainedConfig = None
    PreTrainedModel = None
    CausalLMOutput = None


if PretrainedConfig is not None:
    class MoecConfig(PretrainedConfig):
        model_type = "moec"

        def __init__(self, vocab_size=256, n_positions=64, n_embd=64, n_layer=2, n_head=2, n_inner=256, layer_norm_epsilon=1e-5, moe=None, **kwargs):
            self.vocab_size, self.n_positions, self.n_embd = vocab_size, n_positions, n_embd
            self.n_layer, self.n_head, self.n_inner = n_layer, n_head, n_inner
            self.layer_norm_epsilon = layer_norm_epsilon
            self.moe = moe
            kwargs.setdefault("tie_word_embeddings", True)
            super().__init__(**kwargs)
else:
    class MoecConfig:
        model_type = "moec"

        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)
            self.moe = kwargs.get("moe")
            self.layer_norm_epsilon = kwargs.get("layer_norm_epsilon", 1e-5)

        @classmethod
        def from_json_file(cls, path):
            with open(path, encoding="utf-8") as f:
                return cls(**json.load(f))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {"gelu": gelu_new, "relu": torch.relu, "cubic": lambda x: x * x * x}


class Conv1D(nn.Module):
    """GPT-2's linear layer: weight (in, out), y = x @ W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.c_attn = Conv1D(width, 3 * width)
        self.c_proj = Conv1D(width, width)

    def forward(self, x):
        B, T, C = x.shape
        hd = C // self.heads
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, hd).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        return self.c_proj((att @ v).transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, width, ffn):
        super().__init__()
        self.c_fc = Conv1D(width, ffn)
        self.c_proj = Conv1D(ffn, width)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class Stacked(nn.Module):
    """One (E, in, out) weight and (E, out) bias for the E experts of a layer."""

    def __init__(self, experts, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(experts, n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(experts, n_out))


class Experts(nn.Module):
    def __init__(self, moe, width, ffn):
        super().__init__()
        E = moe["experts"]
        self.linear = moe["expert"] == "linear"
        self.act = ACTIVATIONS[moe["activation"]]
        if self.linear:
            self.proj = Stacked(E, width, width)
        else:
            self.c_fc = Stacked(E, width, ffn)
            self.c_proj = Stacked(E, ffn, width)

    def forward(self, e, x):
        if self.linear:
            return x @ self.proj.weight[e] + self.proj.bias[e]
        h = self.act(x @ self.c_fc.weight[e] + self.c_fc.bias[e])
        return h @ self.c_proj.weight[e] + self.c_proj.bias[e]


class Weight(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(*shape))


class Router(nn.Module):
    """learned / frozen: weight (C, E); cosine: proj (C, D), embedding (D, E), log_scale (1,)."""

    def __init__(self, moe, width):
        super().__init__()
        self.kind = moe["router"]
        if self.kind == "cosine":
            self.proj = Weight(width, moe["dim"])
            self.embedding = Weight(moe["dim"], moe["experts"])
            self.log_scale = nn.Parameter(torch.ones(1))
        else:
            self.weight = nn.Parameter(torch.zeros(width, moe["experts"]))

    def forward(self, x):
        if self.kind != "cosine":
            return x @ self.weight
        p = x @ self.proj.weight
        p = p / p.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        emb = self.embedding.weight
        emb = emb / emb.norm(dim=0, keepdim=True).clamp_min(1e-6)
        return (p @ emb) * torch.exp(self.log_scale)


def _mix32(x):
    m = 0xFFFFFFFF
    x = (x ^ (x >> 16)) & m
    x = (x * 0x7FEB352D) & m
    x = (x ^ (x >> 15)) & m
    x = (x * 0x846CA68B) & m
    return (x ^ (x >> 16)) & m


def _distinct_draws(indices, E, K, key):
    """Per row of hashed indices (K each): the k-th expert is the (h mod (E - k))-th not yet taken, h moec's hash."""
    sel = []
    for row in indices:
        taken = []
        for k, i in enumerate(row):
            r = _mix32((_mix32((i ^ key) & 0xFFFFFFFF) + key) & 0xFFFFFFFF) % (E - k)
            for e in range(E):
                if e in taken:
                    continue
                if r == 0:
                    taken.append(e)
                    break
                r -= 1
        sel.append(taken)
    return torch.tensor(sel, dtype=torch.long)


def _random_experts(n_tok, E, K, salt, seed=0, step=0):
    """moec's random router: K distinct uniform experts per token from a hash of (seed, step, salt, n·K + k)."""
    key = _mix32((_mix32((seed ^ _mix32(salt)) & 0xFFFFFFFF) ^ step) & 0xFFFFFFFF)
    return _distinct_draws([[n * K + k for k in range(K)] for n in range(n_tok)], E, K, key)


def _hash_experts(ids, E, K, salt):
    """moec's hash router: K distinct experts per token id from a hash keyed by the layer's salt alone."""
    key = _mix32(_mix32(_mix32((salt ^ 0x68617368) & 0xFFFFFFFF)))
    return _distinct_draws([[i * K + k for k in range(K)] for i in ids.reshape(-1).tolist()], E, K, key)


class MoE(nn.Module):
    def __init__(self, moe, width, ffn, layer, routes):
        super().__init__()
        self.moe = moe
        self.layer = layer
        self.router = Router(moe, width) if routes and moe["router"] in ("learned", "frozen", "cosine") else None
        self.experts = Experts(moe, width, ffn)
        self.shared_experts = nn.ModuleList(MLP(width, ffn) for _ in range(moe["shared"]))

    def route(self, x, route_labels, input_ids=None):
        """(sel, gate, keep, aux) for x (B, T, C): sel, gate, keep (N, K); aux None, or for a logits
        router {balance: E·Σ_i f_i·P_i (f_i the share of the R·K routing choices, constant; P_i the
        mean score over the R routing rows: tokens or sequences), z: mean over rows of logsumexp²},
        unweighted, as moec adds them to the training loss (before capacity drops)."""
        moe = self.moe
        B, T, C = x.shape
        E, K = moe["experts"], moe["top"]
        N = B * T
        aux = None
        if moe["router"] == "hash":
            sel = _hash_experts(input_ids, E, K, 0x6D6F6500 + self.layer).to(x.device)
            gate = torch.full((N, K), 1.0 / K, dtype=x.dtype, device=x.device)
        elif moe["router"] == "random":
            sel = _random_experts(N, E, K, 0x6D6F6500 + self.layer).to(x.device)
            gate = torch.full((N, K), 1.0 / K, dtype=x.dtype, device=x.device)
        elif moe["router"] == "label":
            if route_labels is None:
                raise ValueError("this model routes by label: pass route_labels, one label id per sequence")
            lab = torch.as_tensor(route_labels, device=x.device).long().view(B, 1, 1)
            sel = ((lab + torch.arange(K, device=x.device).view(1, 1, K)) % E).expand(B, T, K).reshape(N, K)
            gate = torch.full((N, K), 1.0 / K, dtype=x.dtype, device=x.device)
        else:
            if moe["unit"] == "sequence":
                prefix = min(moe["prefix"] or T, T)
                rin = x[:, :prefix].mean(dim=1)  # one routing row per sequence
            else:
                rin = x.reshape(N, C)
            logits = self.router(rin)
            scores = logits.softmax(dim=-1) if moe["gate"] != "sigmoid" else torch.sigmoid(logits)
            sel = logits.topk(K, dim=-1).indices
            gate = scores.gather(1, sel)
            if moe["normalize"] or moe["gate"] == "topk-softmax":
                gate = gate / gate.sum(dim=-1, keepdim=True)
            f = F.one_hot(sel, E).sum(dim=(0, 1)).to(x.dtype) / sel.numel()
            aux = {"balance": E * (f * scores.mean(dim=0)).sum(), "z": logits.logsumexp(dim=-1).pow(2).mean()}
            if moe["unit"] == "sequence":
                sel = sel.repeat_interleave(T, dim=0)
                gate = gate.repeat_interleave(T, dim=0)
        NK = N * K
        cap = NK if moe["dropless"] else max(1, min(NK, math.ceil(moe["capacity"] * NK / E)))
        keep = torch.zeros(N, K, dtype=torch.bool, device=x.device)
        filled = torch.zeros(E, dtype=torch.long, device=x.device)
        for k in range(K):  # all first choices in token order, then all second choices, ...
            onehot = F.one_hot(sel[:, k], E)
            rank = (onehot.cumsum(dim=0) - 1 + filled).gather(1, sel[:, k:k + 1]).squeeze(1)
            keep[:, k] = rank < cap
            filled += onehot.sum(dim=0)
        return sel, gate, keep, aux

    def forward(self, x, routing):
        B, T, C = x.shape
        flat = x.reshape(B * T, C)
        sel, gate, keep = routing[:3]
        out = torch.zeros_like(flat)
        for e in range(self.moe["experts"]):
            tok, k = torch.nonzero((sel == e) & keep, as_tuple=True)
            if tok.numel():
                out.index_add_(0, tok, self.experts(e, flat[tok]) * gate[tok, k].unsqueeze(1))
        for s in self.shared_experts:
            out = out + s(flat)
        return out.view(B, T, C)


class Block(nn.Module):
    def __init__(self, config, layer):
        super().__init__()
        C, eps = config.n_embd, config.layer_norm_epsilon
        moe = config.moe
        self.ln_1 = nn.LayerNorm(C, eps=eps)
        self.attn = Attention(C, config.n_head)
        self.ln_2 = nn.LayerNorm(C, eps=eps)
        if moe and layer in moe["layers"]:
            routes = moe["scope"] == "layer" or layer == min(moe["layers"])
            self.mlp = MoE(moe, C, config.n_inner, layer, routes)
        else:
            self.mlp = MLP(C, config.n_inner)

    def forward(self, x, state):
        x = x + self.attn(self.ln_1(x))
        h = self.ln_2(x)
        if isinstance(self.mlp, MoE):
            routing = state.get("routing") if self.mlp.moe["scope"] == "global" else None
            if routing is None:
                routing = self.mlp.route(h, state.get("route_labels"), state.get("input_ids"))
                state["routing"] = routing
                if routing[3] is not None:
                    state.setdefault("aux", {})[self.mlp.layer] = routing[3]
            state.setdefault("experts", {})[self.mlp.layer] = routing[0]
            return x + self.mlp(h, routing)
        return x + self.mlp(h)


class MoecModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.h = nn.ModuleList(Block(config, l) for l in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def forward(self, input_ids, route_labels=None):
        T = input_ids.shape[1]
        if T > self.wpe.num_embeddings:
            raise ValueError(f"sequence length {T} is longer than the context {self.wpe.num_embeddings}")
        if int(input_ids.max()) >= self.wte.num_embeddings or int(input_ids.min()) < 0:
            raise ValueError(f"token ids must be in 0..{self.wte.num_embeddings - 1}")
        x = self.wte(input_ids) + self.wpe.weight[:T]
        state = {"route_labels": route_labels, "input_ids": input_ids}
        for block in self.h:
            x = block(x, state)
        return self.ln_f(x), state.get("experts", {}), state.get("aux", {})


class _Output(dict):
    """What forward returns without transformers: .logits, .loss, .experts."""

    __getattr__ = dict.get


_Base = PreTrainedModel if PreTrainedModel is not None else nn.Module


class MoecForCausalLM(_Base):
    config_class = MoecConfig
    base_model_prefix = "transformer"

    def __init__(self, config):
        super().__init__(config) if PreTrainedModel is not None else super().__init__()
        self.config = config
        self.transformer = MoecModel(config)

    def forward(self, input_ids, labels=None, route_labels=None, **kwargs):
        h, experts, aux = self.transformer(input_ids, route_labels)
        logits = h @ self.transformer.wte.weight.t()
        loss = None
        if labels is not None:  # as GPT2LMHeadModel: labels are the inputs, shifted here
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
        if CausalLMOutput is not None:
            return CausalLMOutput(loss=loss, logits=logits)
        return _Output(loss=loss, logits=logits, experts=experts, aux=aux)

    if PreTrainedModel is None:
        @classmethod
        def from_pretrained(cls, directory, dtype=torch.float32):
            config = MoecConfig.from_json_file(os.path.join(directory, "config.json"))
            model = cls(config)
            tensors = read_safetensors(os.path.join(directory, "model.safetensors"))
            model.load_state_dict({k: v.to(dtype) for k, v in tensors.items()}, strict=True)
            return model.to(dtype).eval()


_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    """{name: tensor} from a safetensors file, without the safetensors package."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = bytearray(blob[8 + n + begin:8 + n + end])
        out[name] = torch.frombuffer(raw, dtype=_DTYPES[info["dtype"]]).reshape(info["shape"]).clone() if raw else torch.zeros(info["shape"], dtype=_DTYPES[info["dtype"]])
    return out
