"""
Settings for the benchmark harness: pretix' production settings (DEBUG off, read from the config file that
bench/stack.py writes), except that the backend pages render without an offline-compressed asset manifest and
without compiling SCSS (the harness measures views and queries, not the asset pipeline).
"""
import os

from pretix.settings import *  # noqa: F401,F403
from pretix.settings import DATA_DIR, STATIC_ROOT, STATICFILES_DIRS

COMPRESS_ENABLED = COMPRESS_OFFLINE = False
COMPRESS_PRECOMPILERS = ()
COMPRESS_ROOT = os.path.join(DATA_DIR, "compress")
VITE_DEV_MODE = False
STATICFILES_DIRS = STATICFILES_DIRS + [("vite", os.path.join(STATIC_ROOT, "vite"))]
