import os
import time


def add(a, b):
    return a + b


def ratio():
    return 1.5


def slow():
    time.sleep(float(os.environ.get("SELFTEST_SLEEP", "0")))
    return "done"


def flag():
    return True


def secret():
    return 42
