def kv_bytes(layers, kv_heads, head_dim, dtype_bytes):
    return max(2 * layers * kv_heads * head_dim * dtype_bytes, 0)


def oldest(versions):
    return sorted(versions)[0]


def speedup():
    return 2.5


def describe():
    return "kv " + "bytes"
