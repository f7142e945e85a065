"""Shared by the test-file writers: a safetensors image from a list of
tensors, and bf16 bits to and from float32 (round to nearest even)."""
import json
import struct

import numpy as np


def st_bytes(tensors, header_override=None, pad=True, meta=None):
    """tensors: list of (name, dtype_str, np_array_or_rawbytes); meta: the
    __metadata__ dict of strings, or None."""
    header, blobs, off = ({"__metadata__": meta} if meta is not None else {}), [], 0
    for name, dt, data in tensors:
        raw = data if isinstance(data, bytes) else data.tobytes()
        shape = list(data.shape) if not isinstance(data, bytes) else [len(raw) // 4]
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = header_override if header_override is not None else json.dumps(header)
    h = h.encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def bf16(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def from_bf16(u):
    return (u.astype(np.uint32) << 16).view(np.float32)
