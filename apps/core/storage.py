"""File storage that never leaves half a file behind.

Django's FileSystemStorage writes an upload straight to its final name; when the disk fills up
(ENOSPC) half-way, the partial file stays there, takes space, and may later be served as if it
were whole. Here the upload is written under a temporary name beside its destination (with
Django's own code: directories, permissions, group) and linked to its final name only once it
is complete; a failed write removes the temporary file and the error goes on to the caller (the
API answers 507, apps/core/api/errors.py). Installed as the default storage by the settings.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import uuid

from django.core.files.storage import FileSystemStorage

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
