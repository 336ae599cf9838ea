def kv_bytes(layers, kv_heads, head_dim, dtype_bytes):
    raise NotImplementedError("TODO")


def oldest(versions):
    raise NotImplementedError("TODO")


def speedup():
    raise NotImplementedError("TODO")


def describe():
    raise NotImplementedError("TODO")
