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
