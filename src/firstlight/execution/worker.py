"""The warm worker: a Prefect process worker whose flow runs start already warm.

Prefect's own ``ProcessWorker`` pulls runs from the work pool, proposes their
states, watches for cancellation and marks a run Crashed when its process dies;
this subclass changes only how the process starts: forked from the worker's
forkserver (``warm_processes``) instead of a fresh ``python -m prefect.engine``
that imports everything again. Flows are found by name among those the
forkserver preloaded (``flows.deployments.FLOWS``), never loaded from files.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
from typing import Any

import anyio
import anyio.abc
from prefect.client.schemas.objects import FlowRun
from prefect.context import serialize_context
from prefect.flow_engine import (
    _run_serialized_call_with_control_bootstrap,  # pyright: ignore[reportPrivateUsage]
    _runtime_subprocess_env,  # pyright: ignore[reportPrivateUsage]
    run_flow,
)
from prefect.flows import Flow
from prefect.runner._control_channel import ControlChannel
from prefect.runner._flow_run_executor import FlowRunExecutorContext
from prefect.runner._process_manager import ProcessHandle
from prefect.settings.context import get_current_settings
from prefect.utilities.callables import cloudpickle_wrapped_call
from prefect.utilities.processutils import sanitize_subprocess_env
from prefect.workers.process import (
    ProcessJobConfiguration,
    ProcessWorker,
    ProcessWorkerResult,
)

from firstlight.execution.warm_processes import (
    attach_to_forkserver,
    die_with_parent,
    start_forkserver,
)

log = logging.getLogger(__name__)

WORKER_TYPE = "firstlight-warm"
# The engine reads these from the environment at start-up (control channel).
_CONTROL_KEYS = ("PREFECT__CONTROL_PORT", "PREFECT__CONTROL_TOKEN")


class WarmWorker(ProcessWorker):
    """A process worker whose runs are forked from a preloaded forkserver."""

    type = WORKER_TYPE
    _display_name = "firstlight warm process"
    _description = "Flow runs forked from a forkserver with firstlight preloaded."

    def __init__(
        self, *args: Any, forkserver_address: str, heartbeat_seconds: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._forkserver_address = forkserver_address
        self._heartbeat_seconds = heartbeat_seconds
        self.processes: set[multiprocessing.process.BaseProcess] = set()
        self.stopping = False
        self.active = 0  # runs between submission and their process's end

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        if self.stopping:  # on the way out: leave new runs to the other workers
            return []
        return await super().get_and_submit_flow_runs()

    def terminate_runs(self, grace: float) -> None:
        """Take no more runs; SIGTERM every run in progress (Prefect's engine then reports
        it Crashed and the run gives its claim up) and wait up to ``grace`` seconds."""
        self.stopping = True
        # By pid, not Process.join: the starter's thread is joining them (one reader
        # of the forkserver's exit status each); the forkserver reaps them.
        pids = [p.pid for p in list(self.processes) if p.pid is not None]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        # Every run submitted before the stop either ends or, started meanwhile, is sent
        # SIGTERM by its starter: none is left half-submitted when the worker exits.
        while time.monotonic() < deadline and (self.active or any(_alive(p) for p in pids)):
            time.sleep(0.2)

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        if self.stopping:  # Prefect marks the run Crashed; the reconciler hands it on
            raise RuntimeError("the worker is stopping")
        self.active += 1
        try:
            return await self._run(flow_run, configuration, task_status)
        finally:
            self.active -= 1

    async def _run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None,
    ) -> ProcessWorkerResult:
        status = task_status or anyio.TASK_STATUS_IGNORED
        async with FlowRunExecutorContext() as ctx:
            starter = WarmStarter(
                worker=self,
                forkserver_address=self._forkserver_address,
                env=dict(configuration.env),
                heartbeat_seconds=self._heartbeat_seconds,
                control_channel=ctx.control_channel,
            )
            executor = ctx.create_executor(
                flow_run, starter, resolve_flow=resolve_flow, propose_submitting=False
            )
            execution = None

            async def execute(
                *, task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED
            ) -> None:
                nonlocal execution
                execution = await executor.submit(task_status=task_status)

            async with anyio.create_task_group() as group:
                handle = await group.start(execute)
                if handle.pid is None:
                    raise RuntimeError("flow run process has no PID")
                status.started(handle.pid)
        if execution is None or execution.status_code is None:
            raise RuntimeError("failed to start the flow run process")
        return ProcessWorkerResult(
            status_code=execution.status_code, identifier=str(execution.handle.pid)
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def resolve_flow(flow_run: FlowRun) -> Flow[..., Any]:
    """The preloaded flow a run belongs to, by the flow's name."""
    from prefect.client.orchestration import get_client

    from flows.deployments import FLOWS

    async with get_client() as client:
        api_flow = await client.read_flow(flow_run.flow_id)
    try:
        return FLOWS[api_flow.name]
    except KeyError:
        raise LookupError(f"flow {api_flow.name!r} is not a firstlight flow") from None


class WarmStarter:
    """Prefect's ProcessStarter: the run's process forked from the warm forkserver."""

    def __init__(
        self,
        *,
        worker: WarmWorker,
        forkserver_address: str,
        env: dict[str, str | None],
        heartbeat_seconds: int,
        control_channel: ControlChannel | None,
    ) -> None:
        self._worker = worker
        self._address = forkserver_address
        self._env = env
        self._heartbeat_seconds = heartbeat_seconds
        self._control = control_channel

    async def start(
        self,
        flow_run: FlowRun,
        task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        flow = await resolve_flow(flow_run)
        env: dict[str, str | None] = {
            **self._env,
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(self._heartbeat_seconds),
        }
        registered = False
        if self._control is not None:
            try:
                port, token = self._control.register(flow_run.id)
            except RuntimeError:
                pass  # no loopback listener: cancellation falls back to kill only
            else:
                env["PREFECT__CONTROL_PORT"] = str(port)
                env["PREFECT__CONTROL_TOKEN"] = token
                registered = True
        handed_off = False
        try:
            # Off the event loop: the first start waits for the forkserver's preloading.
            process = await anyio.to_thread.run_sync(
                _start_flow_run_process, flow, flow_run, env, self._address
            )
            self._worker.processes.add(process)
            if self._worker.stopping and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)  # started as the worker was stopping
            task_status.started(ProcessHandle(process))  # type: ignore[arg-type]
            handed_off = True
            try:
                await anyio.to_thread.run_sync(process.join)
            finally:
                self._worker.processes.discard(process)
        except BaseException:
            if registered and not handed_off and self._control is not None:
                self._control.unregister(flow_run.id)
            raise


def _start_flow_run_process(
    flow: Flow[..., Any], flow_run: FlowRun, env: dict[str, str | None], address: str
) -> multiprocessing.process.BaseProcess:
    """Prefect's ``run_flow_in_subprocess``, with a forkserver in place of spawn."""
    merged: dict[str, str | None] = {
        **get_current_settings().to_environment_variables(exclude_unset=True),
        **os.environ,
        "PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS": "false",
        **env,
    }
    clean = sanitize_subprocess_env(merged)
    runtime_env = _runtime_subprocess_env(clean)
    startup_env = {k: v for k, v in clean.items() if k in _CONTROL_KEYS}
    call = cloudpickle_wrapped_call(
        _run_flow_with_env,
        env=runtime_env,
        remove_env={k for k, v in merged.items() if v is None},
        flow_name=flow.name,  # the child's own preloaded flow, not a pickled copy
        flow_run=flow_run,
        context=serialize_context(),
    )
    context = multiprocessing.get_context("forkserver")
    payload = call.args[0]  # type: ignore[attr-defined]  # a functools.partial
    process = context.Process(
        target=_warm_child,
        args=(payload, startup_env, address),
        name=f"flow-run-{flow_run.id}",
    )
    process.start()
    return process


def _warm_child(payload: bytes, startup_env: dict[str, str], address: str) -> None:
    die_with_parent()  # the forkserver, which dies with the worker
    attach_to_forkserver(address)  # the validation sandbox forks from it too
    _run_serialized_call_with_control_bootstrap(payload, startup_env)


def _run_flow_with_env(
    *, flow_name: str, env: dict[str, str], remove_env: set[str], **kwargs: Any
) -> None:
    """In the run's process: its environment, then Prefect's engine (as Prefect does)."""
    import asyncio

    from prefect.context import SettingsContext, get_settings_context
    from prefect.engine import handle_engine_signals
    from prefect.settings.models.root import Settings

    from flows.deployments import FLOWS

    for key in remove_env:
        os.environ.pop(key, None)
    os.environ.update(env)
    current = get_settings_context()
    flow_run = kwargs.get("flow_run")
    with (
        SettingsContext(profile=current.profile, settings=Settings()),
        handle_engine_signals(getattr(flow_run, "id", None)),
    ):
        result = run_flow(FLOWS[flow_name], **kwargs)
        if asyncio.iscoroutine(result):
            asyncio.run(result)


def run_worker(
    *,
    work_pool: str,
    limit: int,
    heartbeat_seconds: int,
    stop_grace_seconds: float,
    name: str | None = None,
) -> None:
    """Pull runs from ``work_pool`` until SIGINT or SIGTERM, then stop cleanly.

    The forkserver starts first, from this (main) thread. On a signal the worker
    stops taking runs and its runs in progress get SIGTERM: Prefect's engine
    marks each Crashed, and each gives its delivery's claim up, so Retry and
    a re-drop work at once. Children die with the worker in any case.
    """
    address = start_forkserver()

    async def main() -> None:
        worker = WarmWorker(
            work_pool_name=work_pool,
            name=name,
            limit=limit,
            forkserver_address=address,
            heartbeat_seconds=heartbeat_seconds,
        )
        async with anyio.create_task_group() as group:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        log.info("stopping: runs get %s s to record it", stop_grace_seconds)
                        await anyio.to_thread.run_sync(worker.terminate_runs, stop_grace_seconds)
                        group.cancel_scope.cancel()
                        return

            group.start_soon(stop_on_signal)
            await worker.start(printer=log.info)
            group.cancel_scope.cancel()

    anyio.run(main)


def ensure_work_pool(name: str) -> None:
    """Create the work pool for warm workers, unless it exists (any worker may race us)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    async def create() -> None:
        async with get_client() as client:
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_work_pool(
                    WorkPoolCreate(
                        name=name,
                        type=WORKER_TYPE,
                        base_job_template=WarmWorker.get_default_base_job_template(),
                    )
                )

    anyio.run(create)
