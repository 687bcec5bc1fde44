"""File storage that never leaves half a file behind.

Django's FileSystemStorage writes an upload straight to its final name; when the disk fills up
(ENOSPC) half-way, the partial file stays there, takes space, and may later be served as if it
were whole. Here the upload is written under a temporary name beside its destination (with
Django's own code: directories, permissions, group) and linked to its final name only once it
is complete; a failed write removes the temporary file and the error goes on to the caller (the
API answers 507, apps/core/api/errors.py). Installed as the default storage by the settings
unless STORAGE_BACKEND=s3 selects django-storages' S3 backend; the helpers at the end serve both.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import uuid

from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header

PARTIAL_PREFIX = ".partial-"


class AtomicFileSystemStorage(FileSystemStorage):
    def _save(self, name, content):
        partial = posixpath.join(posixpath.dirname(name), f"{PARTIAL_PREFIX}{uuid.uuid4().hex}")
        try:
            partial = super()._save(partial, content)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(partial))
            raise
        try:
            return self._publish(self.path(partial), name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(partial))

    def _publish(self, source: str, name: str) -> str:
        """Give the complete file its final name without overwriting another (unless allowed)."""
        while True:
            target = self.path(name)
            try:
                if self._allow_overwrite:
                    os.replace(source, target)
                else:
                    os.link(source, target)  # fails if the name was taken meanwhile
                break
            except FileExistsError:
                name = self.get_available_name(name)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                    raise
                if os.path.exists(target):  # no hard links on this filesystem: check, then rename
                    name = self.get_available_name(name)
                    continue
                os.rename(source, target)
                break
        return os.path.relpath(target, self.location).replace("\\", "/")


# -- one way for every file in and out of the configured storage (filesystem or S3) ---------------
def signs_urls(storage=None) -> bool:
    """Whether the storage hands out signed, expiring URLs of private objects (S3 with
    querystring auth); the filesystem storage has no URL anyone may fetch (MEDIA is not served)."""
    storage = storage or default_storage
    return getattr(storage, "querystring_auth", False) is True and hasattr(storage, "bucket_name")


def storage_download(name: str, *, filename: str, content_type: str, storage=None) -> HttpResponse:
    """The answer of a download view whose permission checks passed: on S3 a redirect to a signed
    URL valid STORAGE_S3_URL_SECONDS that names the file and its type; on the filesystem the file
    itself, streamed through this process."""
    storage = storage or default_storage
    if signs_urls(storage):
        url = storage.url(
            name,
            parameters={
                "ResponseContentDisposition": content_disposition_header(True, filename),
                "ResponseContentType": content_type,
            },
        )
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "private, no-store"  # the link is a bearer credential until it expires
        return response
    return FileResponse(storage.open(name, "rb"), as_attachment=True, filename=filename, content_type=content_type)


def storage_save(name: str, fileobj, *, storage=None) -> str:
    """Store an open local file (a finished temporary file) under `name`; returns the name the
    storage chose (never an existing one's)."""
    storage = storage or default_storage
    fileobj.seek(0)
    return storage.save(name, File(fileobj, name=posixpath.basename(name)))


def storage_delete(name: str, *, storage=None) -> bool:
    """Remove a stored file; True when it existed."""
    storage = storage or default_storage
    if not name or not storage.exists(name):
        return False
    storage.delete(name)
    return True
