def add(a, b):
    raise NotImplementedError("add: TODO")


def ratio():
    raise NotImplementedError("ratio: TODO")


def slow():
    raise NotImplementedError("slow: TODO")


def flag():
    raise NotImplementedError("flag: TODO")


def secret():
    raise NotImplementedError("secret: TODO")
