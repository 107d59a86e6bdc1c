"""
The sdist's part of compiling the translations; everything else about the package is in pyproject.toml.

pretix-plugin-build compiles the .po files to .mo in setuptools' `build` step (the "distutils.commands" entry point
in pyproject.toml), which makes every wheel complete, but an sdist is made without a `build` step. This compiles
them before the sdist collects its files (MANIFEST.in includes the .mo files), the same way: Django's
compilemessages, which runs GNU gettext's msgfmt.
"""
import os

from setuptools import setup
from setuptools.command.sdist import sdist

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretix_secrets_import")


class SdistWithCompiledTranslations(sdist):
    def run(self):
        from django.core import management

        # compilemessages compiles every locale/ folder below the current one: start in the package, so that a
        # virtualenv inside the checkout is left alone.
        cwd = os.getcwd()
        os.chdir(PACKAGE_DIR)
        try:
            management.call_command("compilemessages", verbosity=1)
        finally:
            os.chdir(cwd)
        super().run()


setup(cmdclass={"sdist": SdistWithCompiledTranslations})
