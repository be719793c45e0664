"""Sky coverage of releases: IVOA MOCs kept as files, one per embargo group.

A release's positions are grouped by the date they become public (``None``:
public with the release itself) so that the coverage shown at time ``t`` is
the union of the groups already public then: an embargoed catalogue's or
observation's footprint never shows before its date. The groups are written
once, at index time, under ``<root>/<release_key>/`` as MOC FITS files
(``public.fits``, ``until-<UTC stamp>.fits``), each through a temporary file
and a rename, so a reader sees a whole file or none.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mocpy import MOC

_STAMP = "%Y%m%dT%H%M%SZ"
_GROUP = re.compile(r"^(public|until-(\d{8}T\d{6}Z))\.fits$")
_RELEASE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class CoverageStore:
    """MOC files per release and embargo group, under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, release_key: str) -> Path:
        if not _RELEASE_KEY.match(release_key):
            raise ValueError(f"not a release key: {release_key!r}")
        return self.root / release_key

    def save(self, release_key: str, groups: dict[datetime | None, MOC]) -> None:
        """Replace the release's groups (index reruns rewrite them whole)."""
        target = self._dir(release_key)
        building = target.with_name(f".{release_key}.building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        for when, moc in groups.items():
            moc.save(str(building / _file_name(when)), format="fits", overwrite=True)
        old = target.with_name(f".{release_key}.old-{os.getpid()}")
        if target.exists():
            target.rename(old)
        building.rename(target)
        shutil.rmtree(old, ignore_errors=True)

    def recorded(self, release_key: str) -> bool:
        return self._dir(release_key).is_dir()

    def groups(self, release_key: str) -> list[datetime | None]:
        """The dates the release's groups become public (``None``: with the release)."""
        folder = self._dir(release_key)
        if not folder.is_dir():
            return []
        found: list[datetime | None] = []
        for path in sorted(folder.iterdir()):
            match = _GROUP.match(path.name)
            if match is None:
                continue
            stamp = match.group(2)
            found.append(
                None if stamp is None else datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
            )
        return found

    def public_groups(self, release_key: str, now: datetime) -> list[datetime | None]:
        return [g for g in self.groups(release_key) if g is None or g <= now]

    def load(self, release_key: str, now: datetime) -> MOC | None:
        """The union of the groups public at ``now``; ``None`` if none was recorded."""
        folder = self._dir(release_key)
        if not folder.is_dir():
            return None
        groups = self.public_groups(release_key, now)
        mocs = [MOC.from_fits(str(folder / _file_name(g))) for g in groups]
        if not mocs:
            return MOC.new_empty(0)
        return mocs[0].union(*mocs[1:]) if len(mocs) > 1 else mocs[0]


def _file_name(when: datetime | None) -> str:
    if when is None:
        return "public.fits"
    when = when.astimezone(UTC)
    if when.microsecond:  # a stamp has whole seconds: round up, never show a group early
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return f"until-{when.strftime(_STAMP)}.fits"
