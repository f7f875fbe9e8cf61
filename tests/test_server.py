"""JupyterLab is only ever served on loopback with token authentication."""

import re
from pathlib import Path

import pytest

from labviz import server

ROOT = Path(__file__).resolve().parents[1]


def test_lab_config_binds_loopback_with_a_token(tmp_path):
    config = server.lab_config("x" * 32, tmp_path)
    assert config["ServerApp"]["ip"] == "127.0.0.1"
    assert config["ServerApp"]["allow_remote_access"] is False
    assert config["IdentityProvider"]["token"] == "x" * 32


def test_written_config_is_private(tmp_path):
    path = server.write_config(tmp_path / "c.json", server.lab_config("y" * 32, tmp_path))
    assert path.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("token", ["", None, "short"])
def test_empty_or_weak_token_is_refused(token, tmp_path):
    with pytest.raises(ValueError, match="`token` must be at least 16 characters"):
        server.lab_config(token, tmp_path)


def test_no_code_path_disables_auth_or_binds_all_interfaces():
    sources = [p for p in (ROOT / "labviz").rglob("*.py")] + [ROOT / "Makefile"]
    bad = re.compile(r"0\.0\.0\.0|--ip=\*|token=''|token=\"\"|disable_check_xsrf|--no-auth|password_required=False")
    offenders = [str(p) for p in sources if bad.search(p.read_text())]
    assert offenders == []


def test_app_command_serves_voila_on_loopback_with_a_token(tmp_path):
    cmd = server.app_command(tmp_path / "app.ipynb", "z" * 32, port=8900)
    assert cmd[1:4] == ["-m", "voila", str(tmp_path / "app.ipynb")]
    assert "--Voila.ip=127.0.0.1" in cmd and "--port=8900" in cmd and "--no-browser" in cmd
    assert f"--token={'z' * 32}" in cmd and "--strip_sources=True" in cmd
    with pytest.raises(ValueError, match="`token` must be at least 16 characters"):
        server.app_command(tmp_path / "app.ipynb", "short")
