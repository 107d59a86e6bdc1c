"""Settings for `make demo`: pretix' own settings, with the frontend that ships in the pretix package."""
import os

from pretix.settings import *  # noqa: F401,F403
from pretix.settings import DATA_DIR, STATIC_ROOT, STATICFILES_DIRS

# In debug mode pretix would start a Vite dev server through npm, which a PyPI install does not have.
VITE_DEV_MODE = False
STATICFILES_DIRS = STATICFILES_DIRS + [("vite", os.path.join(STATIC_ROOT, "vite"))]

# The demo has no mail server: order confirmations and the other emails land as files in data/mail/.
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.path.join(DATA_DIR, "mail")

# What pretix' settings decide from "runserver" on the command line, which the demo's server (demo/setup_demo.py,
# through call_command) does not have: stylesheets and scripts are served as they are, without an offline manifest.
COMPRESS_ENABLED = COMPRESS_OFFLINE = False
