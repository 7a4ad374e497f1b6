"""Settings for the test suite: fast hashing, in-memory email, immediate tasks."""

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F403

DEBUG = False

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory: the live server, the browser tests' task worker and the tests each
    # open their own connection to it (SQLite serialises the writers).
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(Path(tempfile.gettempdir()) / f"channel-data-sync-tests-{os.getpid()}.sqlite3")
    }
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Nothing printed; the records still pass through the project's filters (caplog reads them).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": LOGGING["filters"],  # noqa: F405
    "loggers": {"django.request": LOGGING["loggers"]["django.request"]},  # noqa: F405
}
