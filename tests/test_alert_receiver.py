"""The lab's alert receiver records what Alertmanager sends and shows it back."""

import json
import threading
import urllib.error
import urllib.request

import pytest

from tools import alert_receiver


@pytest.fixture
def receiver(tmp_path):
    server = alert_receiver.serve("127.0.0.1:0", tmp_path / "alerts.jsonl")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "alerts.jsonl"
    server.shutdown()


def post(url, body: bytes):
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - loopback test server
    return urllib.request.urlopen(request, timeout=5).status  # noqa: S310 - loopback test server


def get(url):
    return json.load(urllib.request.urlopen(url, timeout=5))  # noqa: S310 - loopback test server


def test_records_each_notification_in_order(receiver):
    url, log = receiver
    assert get(url + "/alerts") == []
    first = {"status": "firing", "alerts": [{"labels": {"alertname": "QwenVllmServerDown", "host": "n1"}}]}
    second = {"status": "resolved", "alerts": [{"labels": {"alertname": "QwenVllmServerDown", "host": "n1"}}]}
    assert post(url + "/alerts", json.dumps(first).encode()) == 200
    assert post(url + "/alerts", json.dumps(second).encode()) == 200
    assert get(url + "/alerts") == [first, second]
    assert len(log.read_text().splitlines()) == 2


@pytest.mark.parametrize(("path", "body", "code"), [("/alerts", b"not json", 400), ("/other", b"{}", 404)])
def test_refuses_what_is_not_a_notification(receiver, path, body, code):
    url, log = receiver
    with pytest.raises(urllib.error.HTTPError) as refused:
        post(url + path, body)
    assert refused.value.code == code
    assert not log.exists()
