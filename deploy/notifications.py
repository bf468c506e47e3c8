"""Where failure notifications go: one setting, MLTOY_NOTIFY_URL, made a Prefect block.

- A plain http(s) URL: a generic webhook (Prefect's Custom Webhook block) that POSTs
  JSON `{"subject": ..., "body": ...}`.
- Any URL Apprise knows (https://hooks.slack.com/..., slack://, discord://, mailto://,
  a Teams workflow URL, json://, ...): Apprise sends it, as Slack, Teams, mail, ...
  expect. A Teams workflow URL gets Prefect's Teams block; any other goes through
  Prefect's Slack Webhook block, which hands a URL that is not a hooks.slack.com one to
  Apprise as it is (its `block_initialization`): the one Prefect block that carries any
  Apprise URL (the generic Apprise block is abstract and cannot be saved).

The URL is a secret (it often embeds a token): it lives only in the block's secret
field (the Custom Webhook's `url` is a template filled from its secrets), shown as
`********` by the API and the UI, and never printed. In the stack it reaches the deploy
step as a file (compose's secret `notify-url`, named by MLTOY_NOTIFY_URL_FILE), not as a
variable of the container.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

from prefect.blocks.notifications import (
    CustomWebhookNotificationBlock,
    MicrosoftTeamsWebhook,
    NotificationBlock,
    SlackWebhook,
)

BLOCK_NAME = "mltoy-failures"
BLOCK_TYPES: tuple[type[NotificationBlock], ...] = (
    CustomWebhookNotificationBlock,
    SlackWebhook,
    MicrosoftTeamsWebhook,
)


def configured_url() -> str:
    """MLTOY_NOTIFY_URL from the file MLTOY_NOTIFY_URL_FILE names (absent: not set),
    else from the variable itself (a deploy run outside compose); "" when off."""
    path = os.environ.get("MLTOY_NOTIFY_URL_FILE", "")
    if path:
        file = Path(path)
        return file.read_text().strip() if file.is_file() else ""
    return os.environ.get("MLTOY_NOTIFY_URL", "").strip()


class NotifyUrlError(ValueError):
    """MLTOY_NOTIFY_URL is neither an http(s) URL nor one Apprise knows."""


def notification_block(url: str) -> NotificationBlock:
    """The block that sends to `url` (unsaved). Raises NotifyUrlError naming the scheme
    only (never the URL, which may hold a token)."""
    from apprise import Apprise

    # Apprise logs what it cannot parse, tokens included: not here.
    apprise_log = logging.getLogger("apprise")
    was_disabled, apprise_log.disabled = apprise_log.disabled, True
    try:
        service = Apprise.instantiate(url, suppress_exceptions=True)
    finally:
        apprise_log.disabled = was_disabled
    scheme = urlsplit(url).scheme.lower()
    if service is None:
        if scheme in ("http", "https") and urlsplit(url).hostname:
            return CustomWebhookNotificationBlock(
                name=BLOCK_NAME,
                url="{{ url }}",
                json_data={"subject": "{{ subject }}", "body": "{{ body }}"},
                secrets={"url": url},
            )
        raise NotifyUrlError(
            f"MLTOY_NOTIFY_URL: this {scheme or 'scheme-less'} URL is neither http(s) (a "
            "generic webhook) nor one Apprise can load (slack://, msteams://, discord://, "
            "mailto://, ... with valid tokens; https://github.com/caronc/apprise/wiki)"
        )
    if type(service).__name__ == "NotifyWorkflows" and scheme == "https":
        return MicrosoftTeamsWebhook(url=url)
    return SlackWebhook(url=url)


def describe(block: NotificationBlock) -> str:
    """What the block is, without its URL: for the deploy step's output."""
    if isinstance(block, CustomWebhookNotificationBlock):
        return "a generic webhook (JSON POST)"
    return f"Apprise ({block.get_block_type_name()} block)"


def save(block: NotificationBlock) -> str:
    """Save `block` as BLOCK_NAME (replacing it) and remove a block of that name left
    by an earlier setting of another kind; returns the saved block document's id."""
    for kind in BLOCK_TYPES:
        if kind is not type(block):
            remove(kind)
    return str(block.save(BLOCK_NAME, overwrite=True))


def remove(kind: type[NotificationBlock]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            found = client.read_block_document_by_name(BLOCK_NAME, kind.get_block_type_slug())
        except ObjectNotFound:
            return
        client.delete_block_document(found.id)
