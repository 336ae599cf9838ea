"""labgrade: grade LLM-serving labs with real engines and servers, from pytest."""

from labgrade.scoring import Fail, GraderError, Ungradable, curve

__all__ = ["Fail", "GraderError", "Ungradable", "curve"]
__version__ = "0.1.0"
