"""The Job a flow run of each Kubernetes deployment gets, rendered by Prefect's own
Kubernetes worker and checked against the Kubernetes API's schemas, offline.

The schemas are kubernetes-validate's (shipped in the package: no cluster, no network),
the strict variant: a field Kubernetes does not know is an error, as with
`kubectl apply --validate=strict`. Prefect's worker insists on two Job fields inside the
pod spec (`parallelism`, `completions`; its default template has them too); Kubernetes
drops them with a warning. They are checked to be exactly those and removed before the
strict check: every other field must be known and well-typed.
"""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from prefect_kubernetes.worker import KubernetesWorker

from deploy.k8s_work_pool import SETTINGS_FILES
from tests.unit.k8s.conftest import IMAGE
from tests.unit.k8s.submit import AUTH_STRING, submitted_job

DEPLOYMENTS = ["option-a", "option-b"]
# The oldest Kubernetes the validator ships schemas for that clusters still run, and its newest.
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


def strict_validate(job: dict, version: str) -> None:
    """kubernetes-validate's strict check, less Prefect's two pod-spec fields (docstring)."""
    job = copy.deepcopy(job)
    pod_spec = job["spec"]["template"]["spec"]
    assert (pod_spec.pop("parallelism"), pod_spec.pop("completions")) == (1, 1)
    kubernetes_validate.validate(job, version, strict=True)


@pytest.fixture(params=DEPLOYMENTS)
def job(request, template, k8s_deployments, worker_values, monkeypatch) -> dict:
    auth_secret = worker_values["worker"]["selfHostedServerApiConfig"]["basicAuth"]
    namespace, job = submitted_job(
        template, k8s_deployments[request.param], monkeypatch, auth_secret["existingSecret"]
    )
    assert namespace == job["metadata"]["namespace"] == "mltoy-flows"
    return job


def container(job: dict) -> dict:
    (only,) = job["spec"]["template"]["spec"]["containers"]
    return only


@pytest.mark.parametrize("version", VERSIONS)
def test_each_deployments_job_validates_against_the_kubernetes_schemas(job, version):
    strict_validate(job, version)


def test_prefects_own_default_template_needs_the_same_exception(k8s_deployments, monkeypatch):
    """The control: the two pod-spec fields are Prefect's, not this bundle's."""
    template = KubernetesWorker.get_default_base_job_template()
    deployment = copy.deepcopy(k8s_deployments["option-a"])
    deployment["work_pool"]["job_variables"] = {"image": IMAGE}
    _, job = submitted_job(template, deployment, monkeypatch, auth_secret=None)
    with pytest.raises(kubernetes_validate.ValidationError, match="parallelism"):
        kubernetes_validate.validate(job, VERSIONS[-1], strict=True)
    strict_validate(job, VERSIONS[-1])


@pytest.mark.parametrize(
    ("path", "value"),
    [
        # A misspelled field: Kubernetes would drop it silently, leaving a writable root.
        (("spec", "template", "spec", "containers", 0, "securityContext", "readOnlyRootFs"), True),
        (("spec", "template", "spec", "securityContext", "runAsUser"), "1000"),  # a string
        (("spec", "backoffLimit"), "0"),
        (("spec", "template", "spec", "volumes", 0, "secret", "defaultMode"), "0440"),
        (("spec", "template", "spec", "containers", 0, "volumeMounts", 0, "readOnly"), "yes"),
        (("spec", "template", "spec", "hostPID"), "true"),
        (("metadata", "generateName"), 7),
    ],
)
def test_a_job_with_a_bad_field_is_rejected(job, path, value):
    """The check can fail: one wrong field in an otherwise valid Job is named."""
    bad = copy.deepcopy(job)
    *parents, last = path
    node = bad
    for key in parents:
        node = node[key]
    node[last] = value
    with pytest.raises(kubernetes_validate.ValidationError, match=str(last)):
        strict_validate(bad, VERSIONS[-1])


def test_the_pod_runs_unprivileged_read_only_and_without_the_cluster_api(job):
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "runAsNonRoot": True,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container(job)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod
    for field in ("hostNetwork", "hostPID", "hostIPC", "initContainers"):
        assert field not in pod


def test_limits_equal_requests_and_every_writable_volume_is_bounded(job):
    resources = container(job)["resources"]
    assert resources["limits"] == resources["requests"] == {"cpu": "1", "memory": "1Gi"}
    for volume in job["spec"]["template"]["spec"]["volumes"]:
        if "emptyDir" in volume:
            assert volume["emptyDir"]["sizeLimit"], volume


def test_the_remote_settings_come_read_only_from_the_secret_as_remote_init_lays_them_out(job):
    pod = job["spec"]["template"]["spec"]
    mounts = {mount["name"]: mount for mount in container(job)["volumeMounts"]}
    assert mounts["remote-settings"] == {
        "name": "remote-settings",
        "mountPath": "/run/mltoy",
        "readOnly": True,
    }
    (settings,) = [volume for volume in pod["volumes"] if volume["name"] == "remote-settings"]
    assert settings["secret"]["secretName"] == "mltoy-remote-settings"
    assert settings["secret"]["defaultMode"] == 0o440
    paths = {item["path"] for item in settings["secret"]["items"]}
    assert paths == set(SETTINGS_FILES.values())


def test_the_api_auth_string_reaches_the_pod_as_a_secret_reference_only(job):
    env = {entry["name"]: entry for entry in container(job)["env"]}
    assert env["PREFECT_API_AUTH_STRING"] == {
        "name": "PREFECT_API_AUTH_STRING",
        "valueFrom": {"secretKeyRef": {"name": "prefect-auth", "key": "auth-string"}},
    }
    assert AUTH_STRING not in str(job)
    assert env["PREFECT_API_URL"]["value"].endswith(".svc.cluster.local:4200/api")


def test_the_run_gets_the_bundle_image_prefects_command_and_labels(job):
    assert container(job)["image"] == IMAGE
    assert container(job)["args"] == ["prefect", "flow-run", "execute"]
    labels = job["metadata"]["labels"]
    assert labels["prefect.io/flow-run-name"] == "lucky-fox"
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    assert job["spec"]["backoffLimit"] == 0
    env = {entry["name"]: entry.get("value") for entry in container(job)["env"]}
    # backoffLimit 0: an evicted pod's run is rescheduled by Prefect, not retried by Kubernetes.
    assert env["PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR"] == "reschedule"
    assert env["PREFECT_LOGGING_EXTRA_LOGGERS"] == "mltoy"
