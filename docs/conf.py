# The manual of pretix-secrets-import, built with Sphinx as pretix builds its own documentation (doc/ in the pretix
# repository): reStructuredText, the HTTP API directives of sphinxcontrib-httpdomain and the Read the Docs theme.
# `make docs` installs the `docs` extra and builds it into docs/_build/html with warnings as errors.
import os
import re

DOCS = os.path.dirname(os.path.abspath(__file__))

# The version from the package's source, without importing it (the manual builds without pretix configured).
with open(os.path.join(DOCS, os.pardir, "pretix_secrets_import", "__init__.py")) as f:
    __version__ = re.search(r'^__version__ = "(.+)"$', f.read(), re.M).group(1)

# -- General configuration ------------------------------------------------

extensions = [
    "sphinxcontrib.httpdomain",
]

source_suffix = {".rst": "restructuredtext"}
master_doc = "index"

project = "pretix-secrets-import"
author = "pretix-secrets-import contributors"
copyright = f"2026, {author}"

# The short X.Y version and the full one.
version = ".".join(__version__.split(".")[:2])
release = __version__

language = "en"
exclude_patterns = ["_build"]
pygments_style = "sphinx"

# -- Options for HTML output ----------------------------------------------

html_theme = "sphinx_rtd_theme"
html_title = f"Secrets Import for pretix {release}"
html_show_sourcelink = True
html_static_path = ["_static"]
html_css_files = ["custom.css"]
# As pretix' manual: no general index and no HTTP routing table.
html_domain_indices = False
html_use_index = False
