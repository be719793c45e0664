"""Great Expectations Data Docs of one validation attempt, as a static HTML site.

Belongs here: rendering the validation results that ``checks.expectations``
wrote (one summed ``ExpectationSuiteValidationResult`` per file and suite, as
JSON) into a Data Docs site with Great Expectations' own site builder. The
results are put in an ephemeral context's validation results store and a
filesystem site rooted at the attempt's folder is built from them, so the
pages are real Data Docs (index, one page per file and suite), and a result
summed over many chunks renders like any other.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from firstlight.checks.expectations import RESULTS_SUFFIX

SITE = "firstlight"
INDEX = "index.html"


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
    return index if index.is_file() else None
