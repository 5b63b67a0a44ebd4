"""Settings of the benchmark processes (bench/common.py sets DJANGO_SETTINGS_MODULE to this): the
production settings (DEBUG off), plus the baseline endpoint and the emulator, which the production
settings never install. config/checks.py refuses BENCH_MODE on a deploy check."""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

BENCH_MODE = True
ROOT_URLCONF = "bench.urls"
if "emulator" not in INSTALLED_APPS:
    INSTALLED_APPS = [*INSTALLED_APPS, "emulator"]
