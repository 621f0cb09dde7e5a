"""Which files a scenario may read: its own folder and below, unless the user allows more.

A scenario file is something a teacher hands out and a web page accepts, so what it names
(``csv = "/etc/passwd"``, ``../../x``, ``/proc/self/environ``) must not reach files the
person running it did not mean to share. :class:`FileAccess` is the one check: the
command line builds it from the scenario's folder and ``--data-dir DIR``, and the web page
builds :meth:`FileAccess.nothing` for an uploaded scenario (it may read no server file).

>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> access = FileAccess.beside(folder / "lesson.toml")
>>> access.check(folder / "data" / "doses.csv", "doses.csv").parent.name
'data'
>>> def refusal(access, path, label):
...     try:
...         access.check(path, label)
...     except ChainruleError as exc:
...         return str(exc).split(";")[0]
>>> refusal(access, folder / ".." / "secret.csv", "../secret.csv")
"../secret.csv: is outside the scenario's folder"
>>> refusal(FileAccess.nothing(), folder / "doses.csv", "doses.csv")[:44]
'doses.csv: this scenario may not read files '
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from chainrule.errors import ChainruleError

__all__ = ["FileAccess"]


@dataclass(frozen=True)
class FileAccess:
    """The folders whose files (at any depth below) a scenario may read; none: no files.

    Paths are compared after resolving ``..`` and symbolic links, so a link inside the
    folder that points outside it is refused too.
    """

    folders: tuple[Path, ...] = ()

    @classmethod
    def nothing(cls) -> FileAccess:
        """No file at all: for a scenario uploaded to a server.

        >>> FileAccess.nothing().folders
        ()
        """
        return cls(())

    @classmethod
    def beside(
        cls,
        scenario: str | os.PathLike[str] | None,
        data_dirs: Iterable[str | os.PathLike[str]] = (),
    ) -> FileAccess:
        """The scenario's own folder (the working folder for a text without a file), and
        the folders the user allowed (``--data-dir``).

        >>> FileAccess.beside("lessons/a.toml").folders[0].name
        'lessons'
        """
        own = Path(scenario).parent if scenario is not None else Path()
        folders = [own, *(Path(d) for d in data_dirs)]
        for folder in folders[1:]:
            if not folder.is_dir():
                raise ChainruleError(f"--data-dir {folder}: no such folder")
        return cls(tuple(folder.resolve() for folder in folders))

    def check(self, path: str | os.PathLike[str], label: str) -> Path:
        """``path`` resolved, if a scenario may read it; else one error that names it
        (``label``: the path as the file wrote it) and says how to allow it."""
        if not self.folders:
            raise ChainruleError(
                f"{label}: this scenario may not read files (a scenario given as text, e.g. "
                "on the web page, has its data written in it or uses a built-in data set)"
            )
        resolved = Path(path).resolve()
        if any(resolved.is_relative_to(folder) for folder in self.folders):
            return resolved
        allowed = ", ".join(os.fspath(folder) for folder in self.folders)
        raise ChainruleError(
            f"{label}: is outside the scenario's folder; a scenario reads only files in its "
            f"own folder or below (allowed: {allowed}); to allow another folder, pass "
            "--data-dir DIR (or files=FileAccess.beside(path, [DIR]) in Python)"
        )
