"""UWS 1.1 over HTTP: creation, the phase resource, parameters, limits, abort, the job
list, deletion both ways, and jobs that outlive a restart of the service."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from firstlight.query.service.app import create_app
from firstlight.query.service.jobs import JobStore
from firstlight.query.service.uws import Phase
from tests.tap.conftest import Service

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
QUERY = {
    "LANG": "ADQL",
    "QUERY": "SELECT TOP 3 source_id FROM demo.sources",
    "RESPONSEFORMAT": "votable/td",
}


@pytest.fixture
def client(service: Service) -> httpx.Client:
    return httpx.Client(base_url=service.tap, timeout=30)


def _create(client: httpx.Client, **extra: str) -> str:
    response = client.post("/async", data={**QUERY, **extra})
    assert response.status_code == 303
    return response.headers["location"]


def _doc(client: httpx.Client, url: str, **params: str) -> ET.Element:
    return ET.fromstring(client.get(url, params=params).text)


def test_job_is_created_pending_with_its_parameters(client: httpx.Client) -> None:
    url = _create(client, RUNID="mine")

    job = _doc(client, url)
    assert job.findtext(f"{UWS}phase") == "PENDING"
    assert job.findtext(f"{UWS}runId") == "mine"
    params = {p.get("id"): p.text for p in job.iter(f"{UWS}parameter")}
    assert params["query"] == QUERY["QUERY"]
    assert client.get(f"{url}/phase").text == "PENDING"


def test_parameters_change_while_pending_and_not_after(client: httpx.Client) -> None:
    url = _create(client)

    assert client.post(f"{url}/parameters", data={"MAXREC": "1"}).status_code == 303
    client.post(f"{url}/phase", data={"PHASE": "RUN"})
    job = _doc(client, url, WAIT="5")
    while job.findtext(f"{UWS}phase") in ("QUEUED", "EXECUTING"):
        job = _doc(client, url, WAIT="5")

    assert job.findtext(f"{UWS}phase") == "COMPLETED"
    assert client.get(f"{url}/results/result").text.count("<TR>") == 1
    assert client.post(f"{url}/parameters", data={"MAXREC": "2"}).status_code == 400


def test_execution_duration_and_destruction_are_capped(
    client: httpx.Client, service: Service
) -> None:
    url = _create(client)

    client.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "999999"})
    far = (datetime.now(UTC) + timedelta(days=3650)).isoformat()
    client.post(f"{url}/destruction", data={"DESTRUCTION": far})

    limit = service.settings.query_job_seconds
    assert client.get(f"{url}/executionduration").text == str(limit)
    destruction = datetime.fromisoformat(client.get(f"{url}/destruction").text)
    keep = timedelta(hours=service.settings.query_job_retention_hours)
    assert destruction <= datetime.now(UTC) + keep
    assert client.get(f"{url}/quote").status_code == 200
    assert client.get(f"{url}/owner").text == ""


def test_abort_stops_a_pending_job(client: httpx.Client) -> None:
    url = _create(client)

    client.post(f"{url}/phase", data={"PHASE": "ABORT"})

    assert client.get(f"{url}/phase").text == "ABORTED"
    assert client.post(f"{url}/phase", data={"PHASE": "RUN"}).status_code == 400


def test_job_list_filters_by_phase(client: httpx.Client) -> None:
    url = _create(client)
    job_id = url.rsplit("/", 1)[1]

    pending = ET.fromstring(client.get("/async", params={"PHASE": "PENDING"}).text)
    aborted = ET.fromstring(client.get("/async", params={"PHASE": "ABORTED"}).text)

    assert job_id in {ref.get("id") for ref in pending.iter(f"{UWS}jobref")}
    assert job_id not in {ref.get("id") for ref in aborted.iter(f"{UWS}jobref")}


@pytest.mark.parametrize("how", ["DELETE", "ACTION=DELETE"])
def test_deleted_jobs_are_gone(client: httpx.Client, how: str) -> None:
    url = _create(client)

    if how == "DELETE":
        response = client.delete(url)
    else:
        response = client.post(url, data={"ACTION": "DELETE"})

    assert response.status_code == 303
    assert response.headers["location"].endswith("/tap/async")
    assert client.get(url).status_code == 404


def test_jobs_outlive_a_restart(client: httpx.Client, service: Service) -> None:
    pending = _create(client).rsplit("/", 1)[1]
    cut_short = _create(client).rsplit("/", 1)[1]
    store = JobStore(service.settings.query_jobs_dir)
    job = store.get(cut_short)
    assert job is not None
    store.save(dataclasses.replace(job, phase=Phase.EXECUTING))  # as a crash would leave it

    restarted = create_app(service.settings)
    try:
        jobs = restarted.state.jobs.store
        after = {job_id: jobs.get(job_id) for job_id in (pending, cut_short)}
        assert [j.phase if j else None for j in after.values()] == [Phase.PENDING, Phase.ERROR]
        assert "restarted" in str(after[cut_short] and after[cut_short].error)
    finally:
        restarted.state.jobs.shutdown()
        restarted.state.service.close()
