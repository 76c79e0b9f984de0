"""The GPT-2 model moec trains, in PyTorch, for the benchmark and the gradient cross-check.

Parameter names and layouts follow Hugging Face GPT-2 (Conv1D weights are (in, out): y = x @ W + b),
without the `transformer.` prefix, so a moec safetensors checkpoint loads by name. An MoE layer
replaces the MLP of the blocks in `moe.layers`: a learned softmax router, top-k experts with
optional renormalisation, and the Switch load-balancing loss, over the micro-batch or per sequence
(DeepSeek-V3's sequence-wise loss); or expert choice (each expert its top-c tokens, Zhou et al. 2022).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Conv1D(nn.Module):
    """HF GPT-2's linear layer: weight (in, out), y = x @ W + b."""

    def __init__(self, n_in, n_out, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x):
        if self.bias is None:
            return x @ self.weight
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class Attention(nn.Module):
    def __init__(self, width, heads, context):
        super().__init__()
        assert width % heads == 0, f"width {width} is not a multiple of heads {heads}"
        self.heads = heads
        self.c_attn = Conv1D(width, 3 * width)
        self.c_proj = Conv1D(width, width)
        # torch 1.13 has no fused scaled_dot_product_attention: the explicit masked softmax is
        # what a user of this version writes (nanoGPT's slow path).
        self.register_buffer("mask", torch.ones(context, context, dtype=torch.bool).tril(), persistent=False)

    def forward(self, x):
        B, T, C = x.shape
        hd = C // self.heads
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.heads, hd).transpose(1, 2)
        k = k.view(B, T, self.heads, hd).transpose(1, 2)
        v = v.view(B, T, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, width, ffn):
        super().__init__()
        self.c_fc = Conv1D(width, ffn)
        self.c_proj = Conv1D(ffn, width)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class MoE(nn.Module):
    """Token-routed experts, computed sparsely: each expert runs only on the tokens routed to it."""

    def __init__(self, width, ffn, experts, top, normalize, shared=0, shared_ffn=None, choice=None, bias=None, balance_over="batch"):
        super().__init__()
        self.choice = choice
        assert balance_over in ("batch", "sequence"), f"balance_over {balance_over!r} is not batch or sequence"
        self.balance_over = balance_over
        assert 1 <= top <= experts, f"top {top} must be in 1..experts ({experts})"
        self.top = top
        self.normalize = normalize
        # Auxiliary-loss-free balancing (DeepSeek-V3): a per-expert bias on the scores for the top-k
        # selection only; the gates are the unbiased scores. State, not a parameter.
        assert bias is None or len(bias) == experts, f"bias has {len(bias)} values for {experts} experts"
        self.register_buffer("sel_bias", None if bias is None else torch.tensor(bias, dtype=torch.float32), persistent=False)
        self.router = Conv1D(width, experts, bias=False)
        self.experts = nn.ModuleList(MLP(width, ffn) for _ in range(experts))
        # DeepSeekMoE's shared experts: dense MLPs every token uses with weight 1, beside the routed ones.
        self.shared_experts = nn.ModuleList(MLP(width, shared_ffn or ffn) for _ in range(shared))

    def forward(self, x):
        """Returns (output, Switch balance loss N·Σ f_i·P_i without its weight, tokens per expert).
        With balance_over "sequence", x is (B, T, C) and the loss is taken per sequence, then averaged."""
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        n_tok, n_exp = x.shape[0], len(self.experts)
        probs = (x @ self.router.weight).softmax(dim=-1)
        if self.choice is not None:
            return self.expert_choice(x, probs).view(shape), torch.zeros((), dtype=x.dtype), None
        if self.sel_bias is None:
            weight, expert = probs.topk(self.top, dim=-1)
        else:
            expert = (probs.detach() + self.sel_bias).topk(self.top, dim=-1).indices
            weight = probs.gather(1, expert)
        if self.normalize:
            weight = weight / weight.sum(dim=-1, keepdim=True)

        # Sort the n_tok·k assignments by expert so each expert sees one contiguous slice.
        flat_expert = expert.reshape(-1)
        order = flat_expert.sort(stable=True).indices
        token = order.div(self.top, rounding_mode="floor")
        gate = weight.reshape(-1)[order].unsqueeze(1)
        counts = torch.bincount(flat_expert, minlength=n_exp)

        out = torch.zeros_like(x)
        start = 0
        for e, n in enumerate(counts.tolist()):
            if n == 0:
                continue
            rows = token[start:start + n]
            y = self.experts[e](x.index_select(0, rows)) * gate[start:start + n]
            out.index_add_(0, rows, y)
            start += n
        for s in self.shared_experts:
            out = out + s(x)

        if self.balance_over == "sequence":
            # f_b,i: the share of sequence b's T·k assignments on expert i (a constant); P_b,i: the
            # mean probability of expert i over b's tokens.
            B, T = shape[0], shape[1]
            f = F.one_hot(expert.reshape(B, T * self.top), n_exp).sum(dim=1).to(x.dtype) / (T * self.top)
            balance = n_exp * (f * probs.view(B, T, n_exp).mean(dim=1)).sum(dim=-1).mean()
        else:
            f = counts.to(x.dtype) / (n_tok * self.top)
            balance = n_exp * (f * probs.mean(dim=0)).sum()
        return out.view(shape), balance, counts


    def expert_choice(self, x, probs):
        """Expert choice (Zhou et al. 2022): each expert takes the c tokens of each group with its
        highest scores (ties to the lower token), c = min(G, max(1, ceil(capacity·G·top/experts)));
        the gate is the token's softmax score of the expert. No balance loss (balanced by construction)."""
        n_tok, n_exp = probs.shape
        G = n_tok if self.choice["group"] == "batch" else self.choice["context"]
        c = min(G, max(1, math.ceil(self.choice["capacity"] * G * self.top / n_exp)))
        grouped = probs.detach().view(n_tok // G, G, n_exp)
        rank = grouped.sort(dim=1, descending=True, stable=True).indices[:, :c, :]
        rows = rank + (torch.arange(n_tok // G, device=x.device) * G).view(-1, 1, 1)
        out = torch.zeros_like(x)
        for e in range(n_exp):
            r = rows[:, :, e].reshape(-1)
            out.index_add_(0, r, self.experts[e](x.index_select(0, r)) * probs[r, e].unsqueeze(1))
        return out


class Block(nn.Module):
    def __init__(self, cfg, moe):
        super().__init__()
        C = cfg["width"]
        choice = dict(moe["choice"], context=cfg["context"]) if moe and moe.get("choice") else None
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = Attention(C, cfg["heads"], cfg["context"])
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        # expertWidth / sharedWidth: the experts' own hidden widths (moec's expert-width, shared-width); absent: ffn.
        self.mlp = MoE(C, moe.get("expertWidth") or cfg["ffn"], moe["experts"], moe["top"], moe["normalize"],
                       moe.get("shared", 0), moe.get("sharedWidth") or cfg["ffn"], choice, moe.get("layer_bias"),
                       moe.get("balanceOver", "batch")) if moe else MLP(C, cfg["ffn"])
        self.drop = nn.Dropout(cfg["dropout"])

    def forward(self, x):
        x = x + self.drop(self.attn(self.ln_1(x)))
        if isinstance(self.mlp, MoE):
            y, balance, counts = self.mlp(self.ln_2(x))
            return x + self.drop(y), balance, counts
        return x + self.drop(self.mlp(self.ln_2(x))), None, None


class GPT(nn.Module):
    """cfg: {layers, width, heads, ffn, vocab, context, dropout, moe: None | {experts, top, layers, normalize, balance,
    choice?: {group, capacity}, bias?: {layer: [selection bias per expert]}, balanceOver?: batch | sequence,
    and optionally expertWidth, shared, sharedWidth}}."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        moe = cfg.get("moe")
        moe_layers = set(moe["layers"]) if moe else set()
        bad = sorted(l for l in moe_layers if not 0 <= l < cfg["layers"])
        assert not bad, f"moe.layers {bad} outside 0..{cfg['layers'] - 1}"
        self.balance_weight = float(moe["balance"]) if moe else 0.0
        self.wte = nn.Embedding(cfg["vocab"], cfg["width"])
        self.wpe = nn.Embedding(cfg["context"], cfg["width"])
        self.drop = nn.Dropout(cfg["dropout"])
        bias = (moe or {}).get("bias") or {}
        self.h = nn.ModuleList(Block(cfg, {**moe, "layer_bias": bias.get(str(l))} if l in moe_layers else None) for l in range(cfg["layers"]))
        self.ln_f = nn.LayerNorm(cfg["width"], eps=1e-5)

    def init_weights(self, seed):
        """GPT-2 initialisation: normal(0, 0.02), residual projections scaled by 1/sqrt(2·layers)."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
                    p.fill_(1.0)
                elif p.dim() == 1:
                    p.zero_()
                else:
                    std = 0.02 / math.sqrt(2 * self.cfg["layers"]) if name.endswith("c_proj.weight") else 0.02
                    p.normal_(0.0, std, generator=g)

    def forward(self, idx, targets=None):
        """Returns (logits, losses) with losses = {loss, ce, balance, balance_per_layer: {layer: tensor}}
        when targets are given (-100 = ignored); balance is unweighted, summed over MoE layers."""
        B, T = idx.shape
        assert T <= self.cfg["context"], f"sequence length {T} > context {self.cfg['context']}"
        x = self.drop(self.wte(idx) + self.wpe.weight[:T])
        per_layer = {}
        for l, block in enumerate(self.h):
            x, b, _ = block(x)
            if b is not None:
                per_layer[l] = b
        logits = self.ln_f(x) @ self.wte.weight.t()
        if targets is None:
            return logits, None
        ce = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        if not per_layer:
            return logits, {"loss": ce, "ce": ce, "balance": torch.zeros(()), "balance_per_layer": per_layer}
        balance = sum(per_layer.values())
        return logits, {"loss": ce + self.balance_weight * balance, "ce": ce, "balance": balance, "balance_per_layer": per_layer}


def adamw(model, lr, wd, betas, eps):
    """AdamW with weight decay on tensors of two or more dimensions only."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps)
