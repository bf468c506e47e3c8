"""The Kubernetes work pool's base job template: the Docker pool's rules, as a Job.

Prefect's Kubernetes worker (prefect-kubernetes) turns this template and a run's job
variables into the Job it submits. Its default template
(`KubernetesWorker.get_default_base_job_template()`) lets a deployment or run set the
namespace, service account, image pull policy, labels, the command, CPU and memory, and
starts the pod as the image's user with the cluster's service-account token mounted.
Whoever holds the Prefect API's auth string (every flow pod does) could use that. As in
deploy/work_pool.py, this template exposes three variables and fixes the rest:

- `image`: a tag or digest of the bundle's repository (MLTOY_K8S_IMAGE's), nothing else;
- `env`: environment variables (strings) for the flow container;
- `memory_limit`: one of a few sizes up to MLTOY_K8S_FLOW_MEMORY_MAX.

`additionalProperties: false` makes the API refuse any other variable (422, naming it).
The Job is Prefect's default manifest with these changes, each for the reason the
Docker pool has it (docs/security.md, docs/scale-out.md):

- non-root user and group 1000 (numeric: a name could mean root in another image),
  `runAsNonRoot`, no privilege escalation, no capabilities, the runtime's default
  seccomp profile, a read-only root filesystem; writable: /tmp on a disk `emptyDir`
  (the clone), /var/tmp and the home directory in memory, each with a size limit;
- no service-account token (`automountServiceAccountToken: false`): a flow run has no
  business with the Kubernetes API, as a flow container cannot reach the Docker engine;
- CPU and memory limits equal to the requests: the scheduler reserves what a run may use;
- the remote's settings (DVC, S3 key, Git identity) from a Secret mounted read-only at
  /run/mltoy, laid out as remote-init writes the compose volume, never as env;
- the namespace (`mltoy-flows`: not the server's, so a rewritten template still finds
  no database password to mount), the pull policy, `backoffLimit: 0` (an evicted pod's
  run is rescheduled by Prefect, not retried by Kubernetes behind its back) and a TTL
  for finished Jobs.

There is no socket proxy behind it: a holder of the API's auth string can rewrite the
template (one API call), and then only the cluster's own admission (Pod Security
`restricted` on the namespace, RBAC of the worker's service account) stands in the way.

`MLTOY_K8S_IMAGE=registry.example.com/mltoy/bundle:0.1.0 python -m deploy.k8s_work_pool`
prints it (docs/scale-out.md: the Helm chart's `worker.baseJobTemplate.configuration`).
"""

from __future__ import annotations

import re
import sys
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from deploy.work_pool import SETTINGS_MOUNT, FlowMemorySettings, pool_variables, print_template

# Files of the settings Secret, by key (a key cannot hold '/'), and where each lands under
# /run/mltoy: the paths the image's environment names (docker/Dockerfile) and
# deploy/remote_init.py writes. The S3 remote's set; a GCS or MLflow login is not in it.
SETTINGS_FILES = {
    "dvc-config": "dvc/config",
    "aws-config": "aws/config",
    "aws-credentials": "aws/credentials",
    "git-config": "git/config",
    "git-credentials": "git/credentials",
}
_TAG_OR_DIGEST = r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})"


def quantity(docker_size: str) -> str:
    """Docker's '512m' / '2g' as Kubernetes' '512Mi' / '2Gi' (the same number of bytes)."""
    return docker_size[:-1] + docker_size[-1].upper() + "i"


class KubernetesPoolSettings(FlowMemorySettings):
    """What every flow-run pod is; read from the environment (MLTOY_K8S_*)."""

    model_config = SettingsConfigDict(env_prefix="MLTOY_K8S_", extra="ignore")

    # A registry's repository (a host with a dot or a port), with a tag or a digest.
    image: str = Field(pattern=r"^[a-z0-9.-]+[.:][a-z0-9._/:-]*" + _TAG_OR_DIGEST + "$")
    namespace: str = Field("mltoy-flows", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    settings_secret: str = "mltoy-remote-settings"
    flow_uid: int = Field(1000, gt=0)
    flow_gid: int = Field(1000, gt=0)
    flow_cpu: str = Field("1", pattern=r"^[0-9]+(\.[0-9]+|m)?$")
    scratch_size: str = "4Gi"
    # Tags are immutable in a registry worth the name; pin a digest to be sure.
    image_pull_policy: str = Field("IfNotPresent", pattern="^(IfNotPresent|Always)$")
    finished_job_ttl: int = Field(3600, ge=0)
    # The pod must be running within this (a first pull of the image takes a while).
    pod_watch_timeout_seconds: int = Field(300, gt=0)

    @property
    def repository(self) -> str:
        return re.sub(_TAG_OR_DIGEST + "$", "", self.image)

    def memory_choices(self) -> list[str]:
        return [quantity(size) for size in self.memory_sizes()]


def pod_spec(settings: KubernetesPoolSettings) -> dict[str, Any]:
    """The pod of every flow run: Prefect's container, hardened (module docstring)."""
    resources = {"cpu": settings.flow_cpu, "memory": "{{ memory_limit }}"}
    return {
        # Prefect's worker refuses a manifest without these two here (its own check,
        # prefect_kubernetes.worker._get_base_job_manifest); they are Job fields, which
        # Kubernetes ignores in a pod spec (tests/unit/k8s: the only fields it does not know).
        "parallelism": 1,
        "completions": 1,
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsUser": settings.flow_uid,
            "runAsGroup": settings.flow_gid,
            "runAsNonRoot": True,
            "fsGroup": settings.flow_gid,  # the Secret's files are the group's
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "prefect-job",
                "image": "{{ image }}",
                "imagePullPolicy": settings.image_pull_policy,
                "env": "{{ env }}",
                "resources": {"limits": resources, "requests": resources},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "privileged": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "remote-settings", "mountPath": SETTINGS_MOUNT, "readOnly": True},
                    {"name": "scratch", "mountPath": "/tmp"},
                    {"name": "var-tmp", "mountPath": "/var/tmp"},
                    {"name": "home", "mountPath": "/home/mltoy"},
                ],
            }
        ],
        "volumes": [
            {
                "name": "remote-settings",
                "secret": {
                    "secretName": settings.settings_secret,
                    "defaultMode": 0o440,  # owner root, group fsGroup: read-only to the run
                    "items": [{"key": k, "path": p} for k, p in SETTINGS_FILES.items()],
                },
            },
            {"name": "scratch", "emptyDir": {"sizeLimit": settings.scratch_size}},
            {"name": "var-tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
            {"name": "home", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
        ],
    }


def base_job_template(settings: KubernetesPoolSettings) -> dict[str, Any]:
    """The work pool's base job template (see the module's docstring)."""
    choices = settings.memory_choices()
    default_memory = quantity(settings.flow_memory)
    if default_memory not in choices:
        raise ValueError(
            f"MLTOY_K8S_FLOW_MEMORY={settings.flow_memory} must be one of {choices} "
            f"(sizes up to MLTOY_K8S_FLOW_MEMORY_MAX={settings.flow_memory_max})"
        )
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "namespace": settings.namespace,
            "generateName": "{{ name }}-",
            "labels": {},
            "annotations": {},
        },
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": settings.finished_job_ttl,
            "template": {"spec": pod_spec(settings)},
        },
    }
    return {
        "job_configuration": {
            "job_manifest": manifest,
            "env": "{{ env }}",
            # Fixed by the pool: not variables, so nothing a deployment or run sends
            # reaches them. `command` unset: the worker's own (prefect flow-run execute).
            "name": None,
            "labels": {},
            "annotations": {},
            "namespace": settings.namespace,
            "cluster_config": None,  # in-cluster: the worker's service account
            "job_watch_timeout_seconds": None,
            "pod_watch_timeout_seconds": settings.pod_watch_timeout_seconds,
            "stream_output": True,
        },
        "variables": pool_variables(
            image_description=f"A tag or digest of {settings.repository}.",
            image_pattern=f"^{re.escape(settings.repository)}{_TAG_OR_DIGEST}$",
            image_default=settings.image,
            memory=("memory_limit", "Memory of the flow-run container (limit = request)."),
            memory_choices=choices,
            memory_default=default_memory,
        ),
    }


def main() -> int:
    return print_template(base_job_template(KubernetesPoolSettings()))


if __name__ == "__main__":
    sys.exit(main())
