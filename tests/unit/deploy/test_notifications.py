import pytest
from prefect.blocks.notifications import (
    CustomWebhookNotificationBlock,
    MicrosoftTeamsWebhook,
    SlackWebhook,
)

from deploy.notifications import NotifyUrlError, configured_url, describe, notification_block

TOKEN = "s3cr3tT0ken4canary"
TEAMS = (
    "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"
    f"?api-version=2016-06-01&sp=x&sv=1.0&sig={TOKEN}"
)


def test_a_plain_http_url_is_a_generic_json_webhook_with_the_url_kept_secret():
    block = notification_block(f"http://receiver:8080/hook/{TOKEN}")
    assert isinstance(block, CustomWebhookNotificationBlock)
    # The URL is a template filled from the secrets: the API and UI show it masked.
    assert TOKEN not in block.url and TOKEN not in repr(block)
    request = block._build_request_args(body="the body", subject="the subject")
    assert request["url"] == f"http://receiver:8080/hook/{TOKEN}"
    assert request["method"] == "POST"
    assert request["json"] == {"subject": "the subject", "body": "the body"}
    assert describe(block) == "a generic webhook (JSON POST)"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        (f"https://hooks.slack.com/services/T000/B000/{TOKEN}", SlackWebhook),
        (f"slack://T000/B000/{TOKEN}", SlackWebhook),
        (f"https://discord.com/api/webhooks/123/{TOKEN}", SlackWebhook),  # Apprise as is
        (f"json://receiver:8080/{TOKEN}", SlackWebhook),
        (TEAMS, MicrosoftTeamsWebhook),
    ],
)
def test_urls_apprise_knows_go_through_apprise(url: str, kind: type):
    block = notification_block(url)
    assert type(block) is kind
    assert block.url.get_secret_value() == url
    assert TOKEN not in repr(block) and TOKEN not in describe(block)


@pytest.mark.parametrize("url", [f"bogus://{TOKEN}", f"receiver:8080/{TOKEN}", "http://"])
def test_other_urls_are_refused_without_echoing_them(url: str, caplog):
    with pytest.raises(NotifyUrlError, match="MLTOY_NOTIFY_URL") as refused:
        notification_block(url)
    assert TOKEN not in str(refused.value)
    assert TOKEN not in caplog.text


def test_apprise_does_not_log_a_bad_token(caplog):
    with pytest.raises(NotifyUrlError):
        notification_block("slack://T000/B000/bad-token-with-dashes")
    assert "bad-token" not in caplog.text


def test_the_url_is_read_from_the_secret_file_when_one_is_named(tmp_path, monkeypatch):
    secret = tmp_path / "notify-url"
    secret.write_text(f"http://receiver:8080/hook/{TOKEN}\n")
    monkeypatch.setenv("MLTOY_NOTIFY_URL", "http://not-this-one/")
    monkeypatch.setenv("MLTOY_NOTIFY_URL_FILE", str(secret))
    assert configured_url() == f"http://receiver:8080/hook/{TOKEN}"
    # Compose makes no file for an empty MLTOY_NOTIFY_URL: notifications are off.
    secret.unlink()
    assert configured_url() == ""
    monkeypatch.delenv("MLTOY_NOTIFY_URL_FILE")
    assert configured_url() == "http://not-this-one/"
