"""A crate's metadata and its files, from a directory or straight from a zip file.

Nothing is extracted: a zip member is read in place, so a member named ``../x`` can
never write anywhere. A file is hashed only when its ``@id`` is a plain relative path
inside the crate (no scheme, no ``#``, no ``..``); directories are hashed as capture_lib
names them (the SHA-256 of the sorted lines ``relative/path NUL file-sha256 LF``).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import zipfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from provml.core.errors import ValidationError

METADATA = "ro-crate-metadata.json"
LEGACY_METADATA = "ro-crate-metadata.jsonld"
_BLOCK = 1 << 20


def local_path(ident: str) -> str | None:
    """The crate-relative path an ``@id`` names, or None when it names no local file (an
    absolute URI, a ``#fragment``, a path leaving the crate)."""
    if not ident or ident.startswith("#") or urlsplit(ident).scheme:
        return None
    path = posixpath.normpath(unquote(ident).rstrip("/"))
    if path in (".", "") or path.startswith("../") or path == ".." or path.startswith("/"):
        return None
    return path


@dataclass
class CrateSource:
    """Where a crate is: a directory, or a zip file (its root may be one folder down)."""

    where: str
    metadata_bytes: bytes
    _zip: zipfile.ZipFile | None = None
    _prefix: str = ""
    _hashes: dict[str, tuple[str, int] | None] = field(default_factory=dict)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> CrateSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def metadata(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.metadata_bytes)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"{self.where}: {METADATA} is not JSON: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("@graph"), list):
            raise ValidationError(f"{self.where}: {METADATA} has no @graph list")
        return doc

    def digest(self, ident: str) -> tuple[str, int] | None:
        """(SHA-256, size) of the file or directory the ``@id`` names inside the crate;
        None when it is not there."""
        path = local_path(ident)
        if path is None:
            return None
        if path not in self._hashes:
            self._hashes[path] = self._zip_digest(path) if self._zip else self._dir_digest(path)
        return self._hashes[path]

    # ---- a directory

    def _dir_digest(self, path: str) -> tuple[str, int] | None:
        full = os.path.join(self.where, *path.split("/"))
        root = os.path.realpath(self.where)
        if not os.path.realpath(full).startswith(root + os.sep):
            return None  # a symbolic link leading out of the crate
        if os.path.isfile(full):
            return _file_sha256(full)
        if not os.path.isdir(full):
            return None
        lines, total = [], 0
        for top, dirs, files in os.walk(full):
            dirs.sort()
            for name in sorted(files):
                one = os.path.join(top, name)
                digest, size = _file_sha256(one)
                total += size
                lines.append(f"{os.path.relpath(one, full).replace(os.sep, '/')}\0{digest}\n")
        return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest(), total

    # ---- a zip file

    def _zip_digest(self, path: str) -> tuple[str, int] | None:
        assert self._zip is not None
        name = self._prefix + path
        try:
            info = self._zip.getinfo(name)
        except KeyError:
            info = None
        if info is not None and not info.is_dir():
            return self._member_sha256(info)
        below = [i for i in self._zip.infolist() if i.filename.startswith(name + "/")
                 and not i.is_dir()]  # fmt: skip
        if not below:
            return None
        lines, total = [], 0
        for info in below:
            digest, size = self._member_sha256(info)
            total += size
            lines.append(f"{info.filename[len(name) + 1 :]}\0{digest}\n")
        return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest(), total

    def _member_sha256(self, info: zipfile.ZipInfo) -> tuple[str, int]:
        assert self._zip is not None
        h = hashlib.sha256()
        with self._zip.open(info) as f:
            while block := f.read(_BLOCK):
                h.update(block)
        return h.hexdigest(), info.file_size


def _file_sha256(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def open_crate(path: str) -> CrateSource:
    """A crate: a directory holding ``ro-crate-metadata.json``, that file itself, or a
    zip file holding it at its root or in its one top folder. ValidationError otherwise."""
    if os.path.isdir(path):
        for name in (METADATA, LEGACY_METADATA):
            full = os.path.join(path, name)
            if os.path.isfile(full):
                with open(full, "rb") as f:
                    return CrateSource(path, f.read())
        raise ValidationError(f"{path}: not an RO-Crate: no {METADATA} in it")
    if zipfile.is_zipfile(path):
        zf = zipfile.ZipFile(path)
        names = set(zf.namelist())
        tops = {n.split("/", 1)[0] + "/" for n in names if "/" in n}
        for prefix in ("", *sorted(tops)):
            for name in (METADATA, LEGACY_METADATA):
                if prefix + name in names:
                    return CrateSource(path, zf.read(prefix + name), zf, prefix)
        zf.close()
        raise ValidationError(f"{path}: not an RO-Crate: no {METADATA} in the zip file")
    if os.path.basename(path) in (METADATA, LEGACY_METADATA) or path.endswith(".json"):
        with open(path, "rb") as f:
            return CrateSource(os.path.dirname(path) or ".", f.read())
    raise ValidationError(f"{path}: not an RO-Crate (a directory, a zip file or {METADATA})")
