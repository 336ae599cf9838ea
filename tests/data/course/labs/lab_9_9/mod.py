def add(a, b):
    raise NotImplementedError("add: TODO")


def half(x):
    raise NotImplementedError("half: TODO")


def slow():
    raise NotImplementedError("slow: TODO")


def flag():
    raise NotImplementedError("flag: TODO")


def secret():
    raise NotImplementedError("secret: TODO")


def fast():
    raise NotImplementedError("fast: TODO")
