"""The model registry's rule: one version per distinct model, `@champion` only for a better one.

- A model is identified by the DVC md5 of its file (tag `dvc_model_md5` on the version): a
  run whose model is already registered adds no version, it refers to that one.
- The champion alias moves to a candidate only if the candidate's value of the promotion
  metric (higher is better) is strictly greater than the champion's; a tie, or a champion
  whose value cannot be read, keeps the champion. The first version becomes champion.

Imported only with MLflow tracking on (flows/tracking.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo

MD5_TAG = "dvc_model_md5"
ALIAS = "champion"
PROMOTED, KEPT, ALREADY = "promoted", "kept", "already champion"


@dataclass(frozen=True)
class Decision:
    outcome: str  # promoted | kept | already champion
    reason: str
    metric: str
    candidate: float  # the candidate's value of the metric
    champion: float | None  # the champion's value before the decision (None: none, unknown)
    champion_version: str | None  # the champion's version before the decision


def decide(
    metric: str, candidate: float, champion: float | None, has_champion: bool
) -> tuple[str, str]:
    """The promotion rule alone: (outcome, reason); promote on a strictly better value."""
    if not has_champion:
        return PROMOTED, "first version: no champion yet"
    if champion is None:
        return KEPT, f"the champion has no {metric}: cannot compare, champion kept"
    if candidate > champion:
        return PROMOTED, f"{metric} {candidate:g} > {champion:g}"
    relation = "=" if candidate == champion else "<"
    return KEPT, f"{metric} {candidate:g} {relation} {champion:g}: champion kept"


def versions_of(client: MlflowClient, name: str, md5: str) -> list[ModelVersion]:
    """The versions of `name` holding the model with this md5, oldest first."""
    found = client.search_model_versions(f"name = '{name}' and tags.{MD5_TAG} = '{md5}'")
    return sorted(found, key=lambda version: int(version.version))


def register(
    client: MlflowClient,
    name: str,
    logged: ModelInfo,
    md5: str,
    run_id: str,
    tags: dict[str, str],
) -> tuple[ModelVersion, bool]:
    """The version holding this model (`logged` by this run, with `md5` as a DVC file):
    the existing one, else a new one. Returns (version, new?)."""
    existing = versions_of(client, name, md5)
    if existing:
        return existing[0], False
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, description="The mltoy iris classifier.")
    created = client.create_model_version(
        name,
        logged.model_uri,
        run_id=run_id,
        tags={**tags, MD5_TAG: md5},
        model_id=logged.model_id,  # MLflow 3: a `models:/m-...` source names its logged model
    )
    # Two runs (options A and B) may register the same new model at once: the oldest
    # version stays, a younger duplicate is removed.
    first = versions_of(client, name, md5)[0]
    if str(first.version) != str(created.version):
        client.delete_model_version(name, created.version)
        return first, False
    return created, True


def champion_of(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, ALIAS)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def metric_of(client: MlflowClient, version: ModelVersion, metric: str) -> float | None:
    """The metric as logged by the run that made `version` (None: no run, no value)."""
    if not version.run_id:
        return None
    try:
        value: Any = client.get_run(version.run_id).data.metrics.get(metric)
    except MlflowException:
        return None
    return float(value) if value is not None else None


def promote(
    client: MlflowClient, name: str, candidate: ModelVersion, metric: str, value: float
) -> Decision:
    """Apply the rule to `candidate` (whose `metric` is `value`); move the alias if it wins."""
    champion = champion_of(client, name)
    if champion is None:
        outcome, reason = decide(metric, value, None, has_champion=False)
        before = None
    elif str(champion.version) == str(candidate.version):
        return Decision(
            ALREADY, "this model is the champion", metric, value, value, str(champion.version)
        )
    else:
        before = metric_of(client, champion, metric)
        outcome, reason = decide(metric, value, before, has_champion=True)
    if outcome == PROMOTED:
        client.set_registered_model_alias(name, ALIAS, candidate.version)
    champion_version = str(champion.version) if champion else None
    return Decision(outcome, reason, metric, value, before, champion_version)
