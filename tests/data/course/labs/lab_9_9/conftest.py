# A submission's own conftest must never be loaded under --grade.
import os
open(os.environ["SELFTEST_CONFTEST_MARK"], "w").write("loaded")
