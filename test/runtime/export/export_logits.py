"""Logits of an exported model on a batch, for the export tests:
export_logits.py EXPORT_DIR TOKENS.bin B T OUT.bin [LABELS...]
TOKENS.bin: B*T uint32; OUT.bin: B*T*V float32. A GPT-2 export runs through hf_gpt2.py (HF's
conventions); a moec export through its own modeling_moec.py, imported from EXPORT_DIR."""

import json
import os
import sys

import numpy as np
import torch

directory, tokens, B, T, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
labels = [int(v) for v in sys.argv[6:]] or None
ids = torch.from_numpy(np.fromfile(tokens, dtype="<u4").astype(np.int64)).view(B, T)
with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
    kind = json.load(f)["model_type"]
with torch.no_grad():
    if kind == "gpt2":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from hf_gpt2 import logits
        y = logits(directory, ids)
    else:
        sys.path.insert(0, directory)
        from modeling_moec import MoecForCausalLM
        model = MoecForCausalLM.from_pretrained(directory)
        y = model(ids, route_labels=labels).logits
y.float().numpy().astype("<f4").tofile(out)
