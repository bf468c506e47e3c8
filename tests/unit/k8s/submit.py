"""The Job Prefect's Kubernetes worker would submit for a flow run, without a cluster.

Prefect's own code end to end: the pool's template and the deployment's job variables
(`from_template_and_values`), the run's labels, env and command (`prepare_for_flow_run`),
then the worker's `_create_job` (which swaps the API auth string for a Secret reference)
up to the Kubernetes client call, which a fake takes instead of an API server.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import prefect_kubernetes.worker as k8s_worker
from prefect.client.schemas.objects import Flow, FlowRun
from prefect.client.schemas.responses import DeploymentResponse
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

API_URL = "http://prefect-server.mltoy.svc.cluster.local:4200/api"
AUTH_STRING = "admin:not-a-real-password"
# A client that must not be used: the template has no block or variable references.
NO_CLIENT: Any = object()


class FakeBatchV1Api:
    """Takes the Job where kubernetes_asyncio's BatchV1Api would send it to the cluster."""

    submitted: list[tuple[str, dict]] = []

    def __init__(self, api_client: Any) -> None:
        pass

    async def create_namespaced_job(self, namespace: str, body: dict) -> object:
        self.submitted.append((namespace, copy.deepcopy(body)))
        return object()


async def _submit(template: dict, deployment: dict, work_pool: str) -> tuple[str, dict]:
    job_variables = deployment["work_pool"].get("job_variables") or {}
    config = await KubernetesWorkerJobConfiguration.from_template_and_values(
        template, job_variables, client=NO_CLIENT
    )
    flow = Flow(id=uuid.uuid4(), name=deployment["entrypoint"].rsplit(":", 1)[1])
    api_deployment = DeploymentResponse(
        id=uuid.uuid4(), name=deployment["name"], flow_id=flow.id, job_variables=job_variables
    )
    flow_run = FlowRun(
        id=uuid.uuid4(),
        name="lucky-fox",
        flow_id=flow.id,
        deployment_id=api_deployment.id,
        parameters=deployment.get("parameters") or {},
    )
    config.prepare_for_flow_run(flow_run, deployment=api_deployment, flow=flow)
    FakeBatchV1Api.submitted = []
    await KubernetesWorker(work_pool_name=work_pool)._create_job(config, client=NO_CLIENT)
    (submitted,) = FakeBatchV1Api.submitted
    return submitted


def submitted_job(
    template: dict, deployment: dict, monkeypatch, auth_secret: str | None
) -> tuple[str, dict]:
    """(namespace, Job) a worker with the API URL and auth string set would submit.

    `auth_secret`: the Secret the Helm chart names to the worker for the auth string
    (`worker.selfHostedServerApiConfig.basicAuth.existingSecret`), or None.
    """
    monkeypatch.setattr(k8s_worker, "BatchV1Api", FakeBatchV1Api)
    if auth_secret:
        # What the chart's worker Deployment sets with existingSecret (its templates).
        prefix = "PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET"
        monkeypatch.setenv(f"{prefix}_NAME", auth_secret)
        monkeypatch.setenv(f"{prefix}_KEY", "auth-string")
    settings = {PREFECT_API_URL: API_URL, PREFECT_API_AUTH_STRING: AUTH_STRING}
    with temporary_settings(updates=settings):
        return asyncio.run(_submit(template, deployment, deployment["work_pool"]["name"]))
