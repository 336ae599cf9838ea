def explode():
    raise NotImplementedError("explode: TODO")


def settings():
    raise NotImplementedError("settings: TODO")
