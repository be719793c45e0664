"""Great Expectations Data Docs of one validation attempt, as a static HTML site.

Belongs here: rendering the validation results that ``checks.expectations``
wrote (one summed ``ExpectationSuiteValidationResult`` per file and suite, as
JSON) into a Data Docs site with Great Expectations' own site builder. The
results are put in an ephemeral context's validation results store and a
filesystem site rooted at the attempt's folder is built from them, so the
pages are real Data Docs (index, one page per file and suite), and a result
summed over many chunks renders like any other.

Offline: Great Expectations' pages load Bootstrap, jQuery, bootstrap-table,
Font Awesome and Vega from CDNs and its logo from S3, which the package does
not ship (only its own stylesheet, fonts and images), so an archive without
Internet access showed a blank index. ``make_offline`` rewrites every page of
the site to load nothing from another host: the CDN tags are removed, remote
images point at the copies the site holds, and two small files of ours
(``data_docs_static/``: the few Bootstrap classes and the sliver of jQuery and
bootstrap-table the pages call) are copied into ``static/firstlight/``.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

from firstlight.checks.expectations import RESULTS_SUFFIX

SITE = "firstlight"
INDEX = "index.html"
STATIC = Path(__file__).with_name("data_docs_static")  # our offline stylesheet and script
OWN_STATIC = "static/firstlight"  # where a site holds them

_REMOTE_STYLESHEET = re.compile(r"<link\b[^>]*\bhref=[\"']https?://[^>]*>\s*", re.IGNORECASE)
_REMOTE_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>\s*", re.IGNORECASE
)
_REMOTE_SRC = re.compile(r"\bsrc=([\"'])https?://[^\"']*?([^/\"'?]+)(\?[^\"']*)?\1", re.IGNORECASE)
_REMOTE_CSS_URL = re.compile(r"url\(\s*['\"]?https?://[^)]*\)", re.IGNORECASE)
# GE climbs one folder too few from a validation page to static/ (its favicon 404s).
_OWN_STATIC = re.compile(r"\b(href|src)=\"(?:\./|(?:\.\./)+)static/")
_RELATIVE_HREF = re.compile(r"\bhref=\"(?![a-z][a-z0-9+.-]*:|#|/)([^\"]+)\"", re.IGNORECASE)


def result_files(results_dir: Path) -> list[Path]:
    return sorted(results_dir.glob(f"*{RESULTS_SUFFIX}")) if results_dir.is_dir() else []


def build_data_docs(results_dir: Path, site_dir: Path, *, run_name: str) -> Path | None:
    """Render every result in ``results_dir`` into a site at ``site_dir``; its index page.

    None (and nothing imported) when there are no results to render.
    """
    files = result_files(results_dir)
    if not files:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Great Expectations' import-time warnings
        import great_expectations as gx
        from great_expectations.core.expectation_validation_result import (
            ExpectationSuiteValidationResultSchema,
        )
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        context = gx.get_context(mode="ephemeral")
        context.enable_analytics(enable=False)
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        site_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            SITE,
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(site_dir.resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        schema = ExpectationSuiteValidationResultSchema()
        run_id = RunIdentifier(run_name=run_name)
        for file in files:
            result = schema.load(json.loads(file.read_text(encoding="utf-8")))
            result.meta["run_id"] = run_id.to_json_dict()
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
                run_id=run_id,
                batch_identifier=file.name.removesuffix(RESULTS_SUFFIX),
            )
            context.validation_results_store.set(key, result)
        context.build_data_docs(site_names=[SITE])
    index = site_dir / INDEX
    if not index.is_file():
        return None
    make_offline(site_dir)
    return index


def make_offline(site_dir: Path) -> None:
    """Rewrite every page of a built site so that it loads nothing from another host."""
    own = site_dir / OWN_STATIC
    own.mkdir(parents=True, exist_ok=True)
    for asset in STATIC.iterdir():
        if asset.is_file():
            shutil.copyfile(asset, own / asset.name)
    images = site_dir / "static" / "images"
    for page in site_dir.rglob("*.html"):
        up = "../" * (len(page.relative_to(site_dir).parts) - 1)
        html = offline_html(page.read_text(encoding="utf-8"), up, images)
        page.write_text(_without_dead_links(html, page.parent), "utf-8")


def offline_html(html: str, up: str, images: Path) -> str:
    """One page without remote stylesheets, scripts and images; ours linked instead.

    ``up`` leads from the page to the site's root ("../../" for a page two folders down).
    """

    def local_image(match: re.Match[str]) -> str:
        name = match.group(2)
        local = f"{up}static/images/{name}" if (images / name).is_file() else "data:,"
        return f'src="{local}"'

    html = _REMOTE_STYLESHEET.sub("", html)
    html = _REMOTE_SCRIPT.sub("", html)
    html = _REMOTE_SRC.sub(local_image, html)
    html = _REMOTE_CSS_URL.sub("none", html)
    html = _OWN_STATIC.sub(lambda m: f'{m.group(1)}="{up}static/', html)
    ours = (
        f'<link rel="stylesheet" href="{up}{OWN_STATIC}/firstlight.css">\n'
        f'<script src="{up}{OWN_STATIC}/firstlight.js"></script>\n'
    )
    return html.replace("</head>", ours + "</head>", 1)


def _without_dead_links(html: str, folder: Path) -> str:
    """Links to pages the site does not hold (GE links expectation suite pages, which an
    ephemeral context does not build) become plain text rather than a 404."""

    def keep(match: re.Match[str]) -> str:
        target = match.group(1).split("#")[0].split("?")[0]
        return match.group(0) if not target or (folder / target).exists() else ""

    return _RELATIVE_HREF.sub(keep, html)
