def explode():
    raise RuntimeError("my function broke")


def settings():
    return {"block_size": 7}
