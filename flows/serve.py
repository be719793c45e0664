"""`python -m flows.serve`: serve every deployment from this process (used by `firstlight up`).

Runs started by triggers and schedules execute as subprocesses of this one;
PREFECT_RUNNER_POLL_FREQUENCY (set to 1 s by `up`) bounds how late they start.
"""

from __future__ import annotations

from prefect import serve

from firstlight.config import Settings
from flows.deployments import runner_deployments


def main() -> None:
    settings = Settings()
    serve(
        *runner_deployments(settings),
        print_starting_message=False,
        limit=settings.runner_limit,  # runs beyond it wait: the machine stays responsive
    )


if __name__ == "__main__":
    main()
