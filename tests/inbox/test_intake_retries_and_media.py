"""The retry actor and sweep, and the media download actor (with a fake provider client and
with the real client over httpx.MockTransport)."""

from datetime import timedelta

import dramatiq
import httpx
import pytest
from django.utils import timezone

from inbox import intake, media
from inbox.models import Message, WebhookEvent
from provider.errors import ProviderError
from tests.inbox.conftest import fixture_load, webhook_post


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path  # the default storage follows (setting_changed)
    return tmp_path


def break_processing_once(monkeypatch):
    real = intake.conversation_get_or_create
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("la base de datos se fue a almorzar")
        return real(**kwargs)

    monkeypatch.setattr(intake, "conversation_get_or_create", flaky)


def test_a_processing_failure_answers_200_and_marks_the_event_failed(post, monkeypatch):
    break_processing_once(monkeypatch)
    response = post("messages_received_text")
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.state, event.attempts) == ("failed", 1)
    assert event.error == "RuntimeError: la base de datos se fue a almorzar"
    assert event.retry_at > timezone.now()
    assert not Message.objects.exists()  # rolled back with the failure


def test_the_retry_actor_processes_a_failed_event(post, monkeypatch):
    break_processing_once(monkeypatch)
    post("messages_received_text")
    event = WebhookEvent.objects.get()
    WebhookEvent.objects.update(retry_at=timezone.now() - timedelta(seconds=1))  # backoff over
    intake.webhook_event_retry_later.fn(event.pk)
    event.refresh_from_db()
    assert event.state == "processed"
    assert Message.objects.count() == 1


def test_the_sweep_retries_only_due_events(post, monkeypatch):
    break_processing_once(monkeypatch)
    post("messages_received_text")
    intake.webhook_events_sweep.fn()
    assert WebhookEvent.objects.get().state == "failed"  # not due yet
    assert intake.webhook_events_retry_due(now=timezone.now() + timedelta(minutes=1)) == 1
    assert WebhookEvent.objects.get().state == "processed"


def test_the_sweep_picks_up_an_event_a_dead_process_left_pending(client, db):
    event = intake.webhook_event_store(payload=fixture_load("messages_received_text"))
    assert intake.webhook_events_retry_due() == 0  # a live request may still be on it
    intake.webhook_events_retry_due(now=timezone.now() + intake.STALE_AFTER)
    event.refresh_from_db()
    assert event.state == "processed"


def test_retries_stop_after_max_attempts(post, monkeypatch):
    monkeypatch.setattr(intake, "_outcome", lambda event: 1 / 0)
    post("messages_received_text")
    now = timezone.now()
    for _ in range(intake.MAX_ATTEMPTS + 3):
        now += timedelta(hours=2)
        intake.webhook_events_retry_due(now=now)
    event = WebhookEvent.objects.get()
    assert (event.state, event.attempts, event.retry_at) == ("failed", intake.MAX_ATTEMPTS, None)


def test_a_claimed_event_is_not_processed_twice(post, monkeypatch):
    break_processing_once(monkeypatch)
    post("messages_received_text")
    event = WebhookEvent.objects.get()
    later = timezone.now() + timedelta(minutes=1)
    assert (
        WebhookEvent.objects.filter(pk=event.pk, retry_at__lte=later).update(
            retry_at=later + intake.LEASE
        )
        == 1
    )  # another worker's claim
    assert intake.webhook_event_retry(event.pk, now=later) is False


@pytest.mark.django_db(transaction=True)
def test_a_failure_is_retried_through_the_broker(client, monkeypatch):
    """The immediate retry goes through Dramatiq (stub broker, a real worker thread)."""
    monkeypatch.setattr(intake, "RETRY_BASE_SECONDS", 0.05)
    break_processing_once(monkeypatch)
    broker = dramatiq.get_broker()
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        assert webhook_post(client, fixture_load("messages_received_text")).status_code == 200
        broker.join(intake.webhook_event_retry_later.queue_name, timeout=10_000)
        worker.join()
    finally:
        worker.stop()
    assert WebhookEvent.objects.get().state == "processed"
    assert Message.objects.count() == 1


# --- media ------------------------------------------------------------------------------------


class FakeProvider:
    """Stands in for provider.wasender's client: records calls, answers or raises."""

    def __init__(self, *, content=b"\xff\xd8jpeg-bytes", mime="image/jpeg", errors=()):
        self.content, self.mime, self.errors = content, mime, list(errors)
        self.decrypted, self.downloads = [], []

    def decrypt_media(self, message):
        if self.errors:
            raise self.errors.pop(0)
        self.decrypted.append(message)
        return "https://wasenderapi.com/media/public-123.jpg"

    def download(self, url, *, max_bytes):
        self.downloads.append((url, max_bytes))
        return self.content, self.mime


@pytest.fixture
def image_message(post, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        post("messages_upsert_flat_image")
    message = Message.objects.get()
    return message, callbacks


def test_an_inbound_image_enqueues_its_download_after_commit(image_message, monkeypatch):
    message, callbacks = image_message
    sent = []
    monkeypatch.setattr(media.media_download, "send", lambda *args: sent.append(args))
    for callback in callbacks:
        callback()
    assert sent == [(message.pk,)]


def test_media_download_saves_the_file(image_message, media_root):
    message, _ = image_message
    provider = FakeProvider()
    media.media_download_run(message.pk, attempt=0, provider=provider)
    message.refresh_from_db()
    assert provider.decrypted == [message.media_source]
    assert provider.downloads == [
        ("https://wasenderapi.com/media/public-123.jpg", 16 * 1024 * 1024)
    ]
    assert message.media_file.name.endswith(f"{message.pk}.jpg")
    assert message.media_file.read() == b"\xff\xd8jpeg-bytes"
    assert (message.media_mime, message.media_size) == ("image/jpeg", 12)
    assert (media_root / message.media_file.name).exists()


def test_media_download_is_done_once(image_message, media_root):
    message, _ = image_message
    provider = FakeProvider()
    media.media_download_run(message.pk, attempt=0, provider=provider)
    media.media_download_run(message.pk, attempt=0, provider=provider)
    assert len(provider.downloads) == 1


def test_a_transient_error_retries_with_backoff(image_message, monkeypatch):
    message, _ = image_message
    sent = []
    monkeypatch.setattr(media.media_download, "send_with_options", lambda **kw: sent.append(kw))
    provider = FakeProvider(errors=[ProviderError("503", permanent=False)])
    media.media_download_run(message.pk, attempt=2, provider=provider)
    assert sent == [{"args": (message.pk, 3), "delay": 40_000}]
    message.refresh_from_db()
    assert not message.media_file and not message.media_error


def test_a_transient_error_honours_retry_after(image_message, monkeypatch):
    message, _ = image_message
    sent = []
    monkeypatch.setattr(media.media_download, "send_with_options", lambda **kw: sent.append(kw))
    error = ProviderError("429", permanent=False, retry_after=90)
    media.media_download_run(message.pk, attempt=0, provider=FakeProvider(errors=[error]))
    assert sent[0]["delay"] == 90_000


def test_a_permanent_error_leaves_a_note_and_stops(image_message, monkeypatch):
    message, _ = image_message
    monkeypatch.setattr(
        media.media_download, "send_with_options", lambda **kw: pytest.fail("must not retry")
    )
    error = ProviderError("404", permanent=True, reason="El archivo ya no existe.")
    media.media_download_run(message.pk, attempt=0, provider=FakeProvider(errors=[error]))
    message.refresh_from_db()
    assert message.media_error == "No se pudo descargar el archivo: El archivo ya no existe."


def test_too_many_transient_errors_give_up_with_a_note(image_message, monkeypatch):
    message, _ = image_message
    monkeypatch.setattr(
        media.media_download, "send_with_options", lambda **kw: pytest.fail("must not retry")
    )
    error = ProviderError("timeout", permanent=False, reason="WaSender no respondió a tiempo.")
    media.media_download_run(
        message.pk, attempt=media.MEDIA_MAX_ATTEMPTS - 1, provider=FakeProvider(errors=[error])
    )
    message.refresh_from_db()
    assert message.media_error.endswith("WaSender no respondió a tiempo.")


def test_the_size_cap_depends_on_the_kind(post, media_root):
    body = fixture_load("messages_upsert_flat_image")
    body["data"]["message"] = {"documentMessage": body["data"]["message"]["imageMessage"]}
    post(body)
    provider = FakeProvider(mime="application/pdf")
    media.media_download_run(Message.objects.get().pk, attempt=0, provider=provider)
    assert provider.downloads[0][1] == 100 * 1024 * 1024


def test_media_download_through_the_real_client_over_http(image_message, media_root):
    """The WaSender client with only its transport replaced: decrypt-media, then the file."""
    from provider.wasender import WaSenderClient

    message, _ = image_message
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url)))
        if request.url.path == "/api/decrypt-media":
            return httpx.Response(
                200, json={"success": True, "publicUrl": "https://mmg.whatsapp.net/d/abc.jpg"}
            )
        return httpx.Response(200, content=b"jpeg!", headers={"content-type": "image/jpeg"})

    provider = WaSenderClient(
        base_url="https://www.wasenderapi.com/api",
        api_key="k",
        transport=httpx.MockTransport(handler),
    )
    media.media_download_run(message.pk, attempt=0, provider=provider)
    message.refresh_from_db()
    assert seen == [
        ("POST", "https://www.wasenderapi.com/api/decrypt-media"),
        ("GET", "https://mmg.whatsapp.net/d/abc.jpg"),
    ]
    assert message.media_file.read() == b"jpeg!"


# --- bursts: stored raw, applied by a worker ----------------------------------------------------


def test_a_webhook_that_arrives_while_another_is_in_hand_is_stored_raw_for_a_worker(
    post, monkeypatch, settings
):
    settings.WEBHOOK_DEFER_WHEN_BUSY = True
    queued = []
    monkeypatch.setattr(intake.webhook_event_process, "send", queued.append)
    with intake._load.enter():  # another request of this process is being handled
        assert post("messages_received_text").status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.state, queued) == ("pending", [event.pk])
    assert not Message.objects.exists()
    intake.webhook_event_process.fn(event.pk)
    event.refresh_from_db()
    assert event.state == "processed"
    assert Message.objects.count() == 1


def test_a_lone_webhook_is_applied_in_its_request(post, monkeypatch, settings):
    settings.WEBHOOK_DEFER_WHEN_BUSY = True
    monkeypatch.setattr(intake.webhook_event_process, "send", lambda pk: pytest.fail("queued"))
    post("messages_received_text")
    assert WebhookEvent.objects.get().state == "processed"
    assert Message.objects.count() == 1


def test_a_burst_webhook_is_kept_when_the_broker_is_down(post, monkeypatch, settings):
    settings.WEBHOOK_DEFER_WHEN_BUSY = True

    def down(event_id):
        raise ConnectionError("redis is restarting")

    monkeypatch.setattr(intake.webhook_event_process, "send", down)
    with intake._load.enter():
        assert post("messages_received_text").status_code == 200
    intake.webhook_events_retry_due(now=timezone.now() + intake.STALE_AFTER)  # the sweep
    assert WebhookEvent.objects.get().state == "processed"
    assert Message.objects.count() == 1
