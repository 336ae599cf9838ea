from labgrade.fixtures import *  # noqa: F403
