"""Making deliveries for tests: generated ones, and broken ones with honest manifests."""

from __future__ import annotations

from pathlib import Path

from astropy.io import fits

from firstlight.checks.verify import read_manifest
from firstlight.producer.manifest_builder import build_manifest, write_manifest
from firstlight.producer.synth import synthesize_delivery


def generated(root: Path, *, version: str = "1", rows: int = 1500, **kwargs: object) -> Path:
    return synthesize_delivery(
        root,
        mission="demo",
        delivery_id=f"demo-v{version}",
        release_version=version,
        seed=int(version),
        catalogue_rows=rows,
        **kwargs,  # type: ignore[arg-type]
    )


def remanifest(path: Path) -> None:
    """Rewrite manifest.json for the files as they are now (a producer's honest mistake)."""
    old, _ = read_manifest(path)
    (path / "manifest.json").unlink()
    write_manifest(
        path,
        build_manifest(
            path,
            mission=old.mission,
            delivery_id=old.delivery_id,
            release_name=old.release.name,
            release_version=old.release.version,
            producer=old.producer,
            created=old.created,
        ),
    )


def duplicate_source_ids(path: Path, rows: tuple[int, int] = (3, 7)) -> None:
    """Give two catalogue rows the same source_id, keeping the file's checksums valid."""
    catalogue = path / "catalogue" / "sources.fits"
    with fits.open(catalogue) as hdul:
        hdus = fits.HDUList([hdu.copy() for hdu in hdul])
    data = hdus[1].data
    data["source_id"][rows[1]] = data["source_id"][rows[0]]
    hdus.writeto(catalogue, overwrite=True, checksum=True)
    remanifest(path)


def tree_digest(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
