"""``flowrun serve``: what it checks before it becomes gunicorn, and the address it
prints. (The served deployment itself: ``test_wheel.py``, from an installed wheel.)"""

from __future__ import annotations

import os

import pytest

from flowrun.cli.main import cli
from flowrun.web.addresses import studio_url


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000/"),
        ("0.0.0.0", 8080, "http://127.0.0.1:8080/"),
        ("::", 8000, "http://[::1]:8000/"),
        ("::1", 9000, "http://[::1]:9000/"),
        ("[::1]", 9000, "http://[::1]:9000/"),
        ("flowrun.internal", 80, "http://flowrun.internal:80/"),
    ],
)
def test_the_address_to_open(host, port, url):
    assert studio_url(host, port) == url


def test_a_bad_setting_is_a_message_not_a_server(runner, monkeypatch):
    monkeypatch.setenv("FLOWRUN_HISTORY_LIMIT", "lots")
    result = runner.invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "FLOWRUN_HISTORY_LIMIT='lots' is not a valid int" in result.output


@pytest.mark.parametrize(
    ("args", "wrong"),
    [(["--port", "0"], "--port"), (["--workers", "0"], "--workers")],
)
def test_bad_options_are_refused(runner, args, wrong):
    result = runner.invoke(cli, ["serve", *args])
    assert result.exit_code == 2 and wrong in result.output


def test_it_becomes_gunicorn_with_the_shipped_settings(runner, monkeypatch, tmp_path):
    from flowrun import resources

    became = []
    monkeypatch.setattr("os.execv", lambda path, argv: became.append(argv))
    # serve sets these for gunicorn: recorded here, so they are restored after.
    for name in ("FLOWRUN_BIND", "PORT", "WEB_CONCURRENCY", "FLOWRUN_DATA_DIR"):
        monkeypatch.setenv(name, "")
    data = str(tmp_path / "history")
    result = runner.invoke(
        cli, ["serve", "--port", "8123", "--workers", "3", "--data-dir", data]
    )
    assert result.exit_code == 0, result.output
    (argv,) = became
    assert argv[1:] == [
        "-m",
        "gunicorn",
        "-c",
        str(resources.gunicorn_config()),
        "flowrun:create_app()",
    ]
    assert (os.environ["PORT"], os.environ["WEB_CONCURRENCY"]) == ("8123", "3")
    assert os.environ["FLOWRUN_DATA_DIR"] == data


def test_dev_runs_flasks_reloading_server_instead(runner, monkeypatch, tmp_path):
    from flask import Flask

    ran, became = [], []
    monkeypatch.setattr("os.execv", lambda path, argv: became.append(argv))
    monkeypatch.setattr(Flask, "run", lambda app, **kw: ran.append(kw))
    for name in ("FLOWRUN_BIND", "PORT", "WEB_CONCURRENCY", "FLOWRUN_DATA_DIR"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("FLOWRUN_FLOWS_DIR", str(tmp_path / "flows"))
    data = str(tmp_path / "history")
    result = runner.invoke(
        cli, ["serve", "--dev", "--port", "8124", "--data-dir", data]
    )
    assert result.exit_code == 0, result.output
    assert became == []
    assert ran == [
        {"host": "127.0.0.1", "port": 8124, "threaded": True, "use_reloader": True}
    ]
    assert "open http://127.0.0.1:8124/" in result.output


def test_listening_beyond_loopback_without_a_token_is_loud(runner, monkeypatch):
    monkeypatch.setattr("os.execv", lambda path, argv: None)
    for name in ("FLOWRUN_BIND", "PORT", "WEB_CONCURRENCY", "FLOWRUN_TOKEN"):
        monkeypatch.setenv(name, "")
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "WARNING: listening on 0.0.0.0 without FLOWRUN_TOKEN" in result.output
