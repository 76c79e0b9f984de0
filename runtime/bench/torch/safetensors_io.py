"""Reads and writes the safetensors format with json + numpy (Debian bookworm has no python3-safetensors).

Layout: an 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
[begin, end]}, "__metadata__"?: {...}}, then the tensor bytes, offsets relative to the end of the header.
"""

import json
import struct

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def read(path):
    """Returns {name: numpy array}; BF16 is widened to float32."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for a safetensors file ({len(blob)} bytes)")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} exceeds the file size {len(blob)}")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        raw = data[begin:end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif info["dtype"] in _DTYPES:
            arr = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]])
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        count = int(np.prod(shape)) if shape else 1
        if arr.size != count:
            raise ValueError(f"{path}: tensor {name}: {arr.size} elements for shape {list(shape)}")
        out[name] = arr.reshape(shape).copy()
    return out


def write(path, tensors, metadata=None):
    """Writes {name: numpy array} as F32, names sorted, data 8-byte aligned."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name], dtype="<f4")
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format allows trailing spaces; keeps the data aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def copy_into(model, weights, path, fail):
    """Copies `weights` (name -> array) into the model's parameters of the same names; `fail` on a
    missing tensor or a shape that differs. Returns the names in `weights` that are not parameters."""
    import torch

    own = dict(model.named_parameters())
    missing = sorted(set(own) - set(weights))
    if missing:
        fail(f"{path} lacks {len(missing)} tensors of the model: {', '.join(missing[:8])}")
    with torch.no_grad():
        for name, p in own.items():
            w = weights[name]
            if tuple(w.shape) != tuple(p.shape):
                fail(f"{name}: shape {list(w.shape)} in {path}, the model needs {list(p.shape)}")
            p.copy_(torch.from_numpy(w.astype(np.float32)))
    return sorted(set(weights) - set(own))
