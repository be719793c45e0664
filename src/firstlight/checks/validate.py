"""Step "validate": every file of a verified delivery through the checks that apply to it.

Belongs here: which checks run on which file, nothing else. A check is a
function of one file's ``FileContext`` returning findings, and says itself
whether it applies (returning none if not); ``FILE_CHECKS`` lists them in
order, so a new kind of check joins by adding one function to the tuple.
A check in ``AFTER_READABLE`` (the Great Expectations suite of a catalogue)
runs on a file unless a check before it found the file unreadable
(``UNREADABLE``: it cannot be opened, or its check crashed or ran out of the
sandbox's limits, which a second pass would only repeat). Failing rows (a dec
of 95, duplicate ids) do not stop it: the producer gets every finding of a
delivery in one round, not one kind per resend.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from firstlight.checks.catalogue_checks import check_catalogue
from firstlight.checks.expectations import check_catalogue_suite
from firstlight.checks.fits_checks import check_fits_file
from firstlight.checks.isolation import Limits, run_isolated
from firstlight.checks.rules import FormatRules
from firstlight.checks.suites import Suites
from firstlight.domain.findings import Finding, Report, Severity
from firstlight.domain.manifest import FileFormat, Manifest, ManifestFile, ProductType
from firstlight.domain.progress import Progress, RowProgress

STEP = "validate"


@dataclass(frozen=True)
class FileContext:
    """One delivered file and what its checks need to know."""

    path: Path
    entry: ManifestFile
    mission: str
    rules: FormatRules
    chunk_rows: int
    suites: Suites | None = None  # None: no expectation suites run
    results_dir: Path | None = None  # where suites write validation results for Data Docs
    progress: Progress | None = None  # rows read of a catalogue, per pass over it


FileCheck = Callable[[FileContext], list[Finding]]


def fits_format(ctx: FileContext) -> list[Finding]:
    """FITS structure, checksums, keywords, WCS and table columns (not for auxiliary files)."""
    entry = ctx.entry
    if entry.format is not FileFormat.FITS or entry.product_type is ProductType.AUXILIARY:
        return []
    return check_fits_file(ctx.path, entry.path, entry.product_type, ctx.rules)


def catalogue_content(ctx: FileContext) -> list[Finding]:
    """A catalogue's columns and rows against its table definition, in any table format."""
    entry = ctx.entry
    if entry.table is None:
        return []
    return check_catalogue(
        ctx.path,
        entry.path,
        entry.format,
        entry.table,
        ctx.chunk_rows,
        progress=_labelled(ctx.progress, f"{entry.path} checked"),
    )


def catalogue_expectations(ctx: FileContext) -> list[Finding]:
    """Every row of a catalogue through the mission's catalogue expectation suite."""
    entry = ctx.entry
    if entry.table is None or ctx.suites is None:
        return []
    return check_catalogue_suite(
        ctx.path,
        entry.path,
        entry.format,
        entry.table,
        ctx.suites.catalogue,
        chunk_rows=ctx.chunk_rows,
        results_dir=ctx.results_dir,
        progress=_labelled(ctx.progress, f"{entry.path} expectations"),
    )


def _labelled(progress: Progress | None, what: str) -> RowProgress | None:
    if progress is None:
        return None
    report = progress
    return lambda done, total: report(what, done, total)


FILE_CHECKS: tuple[FileCheck, ...] = (fits_format, catalogue_content, catalogue_expectations)
AFTER_READABLE: frozenset[FileCheck] = frozenset({catalogue_expectations})
# Errors that say a file's rows cannot be read (or reading them exceeded the limits).
UNREADABLE: frozenset[str] = frozenset(
    {"fits.open", "fits.structure", "table.read", "validate.limits", "validate.crash"}
)


def validate_delivery(
    delivery_dir: Path,
    manifest: Manifest,
    rules: FormatRules,
    chunk_rows: int = 100_000,
    checks: tuple[FileCheck, ...] = FILE_CHECKS,
    *,
    limits: Limits | None = None,
    suites: Suites | None = None,
    results_dir: Path | None = None,
    processes: int = 1,
    progress: Progress | None = None,
) -> Report:
    """Run ``checks`` on every file the manifest lists; one report for the delivery.

    With ``limits``, each file's checks run in a child process under them (see
    ``checks.isolation``), up to ``processes`` files at once: what the worker runs
    untrusted parsers with. With ``suites``, catalogues also go through their
    expectation suite, which writes its validation results to ``results_dir`` (for
    Data Docs). Findings come in the manifest's order of files whatever the order
    in which their children finish.
    """
    jobs = [
        FileJob(
            FileContext(
                path=delivery_dir / entry.path,
                entry=entry,
                mission=manifest.mission,
                rules=rules,
                chunk_rows=chunk_rows,
                suites=suites,
                results_dir=results_dir,
            ),
            checks,
        )
        for entry in manifest.files
    ]
    if limits is None:
        found = [checks_of_file(job.with_progress(progress)) for job in jobs]
    else:
        sandboxed = limits

        def isolated(job: FileJob) -> list[Finding]:
            # The callback stays here (it need not pickle): the child reports through its pipe.
            return run_isolated(
                checks_of_file, job, sandboxed, file=job.file.entry.path, progress=progress
            )

        # Threads only wait on their children: the parsing runs in the children.
        with ThreadPoolExecutor(max_workers=max(1, processes)) as pool:
            found = list(pool.map(isolated, jobs))
    report = Report(step=STEP)
    for findings in found:
        report.extend(findings)
    return report


@dataclass(frozen=True)
class FileJob:
    """One file and the checks to run on it, in one sandbox child."""

    file: FileContext
    checks: tuple[FileCheck, ...]

    def with_progress(self, progress: Progress | None) -> FileJob:
        """The job reporting its rows to ``progress`` (in a sandbox child: through its pipe)."""
        return replace(self, file=replace(self.file, progress=progress))


def checks_of_file(job: FileJob) -> list[Finding]:
    """The checks of one file in order; one in ``AFTER_READABLE`` only if those before
    it could read the file. A check that raises costs one finding, not the others'."""
    findings: list[Finding] = []
    readable = True
    for check in job.checks:
        if check in AFTER_READABLE and not readable:
            continue
        try:
            found = check(job.file)
        except MemoryError:
            raise  # the sandbox reports the memory limit
        except Exception as exc:
            name = getattr(check, "__name__", "check")
            reason = f"{name} failed: {type(exc).__name__}: {exc}"[:2000]
            found = [Finding(check="validate.crash", reason=reason, file=job.file.entry.path)]
        findings.extend(found)
        readable = readable and not any(
            f.severity is Severity.ERROR and f.check in UNREADABLE for f in found
        )
    return findings
