"""JupyterLab is only ever served on loopback with token authentication."""

import asyncio
import inspect
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labviz.servers import jupyter as server

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


def test_no_code_path_disables_auth_and_only_the_lan_flag_binds_all_interfaces():
    sources = [p for p in (ROOT / "labviz").rglob("*.py")] + [ROOT / "Makefile"]
    bad = re.compile(r"--ip=\*|token=''|token=\"\"|disable_check_xsrf|--no-auth|password_required=False")
    offenders = [str(p) for p in sources if bad.search(p.read_text())]
    assert offenders == []
    # every interface is named once, in server.ALL_INTERFACES, which only `labviz app --lan` uses
    named = [(p.name, line.strip()) for p in sources for line in p.read_text().splitlines()
             if "0.0.0.0" in line]
    assert named == [("jupyter.py", 'ALL_INTERFACES = "0.0.0.0"')]
    assert "ALL_INTERFACES if lan else LOOPBACK" in inspect.getsource(server.launch_app)
    assert inspect.signature(server.launch_app).parameters["lan"].default is False


def test_the_lan_warning_names_the_address_and_what_the_tokens_give():
    text = server.lan_warning("192.168.1.20")
    assert text.startswith("WARNING: --lan") and "192.168.1.20" in text
    assert "students' URL" in text and "teacher's URL" in text and "every student's runs" in text
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", server.lan_address())


def test_each_server_and_port_logs_to_its_own_file():
    logs = {server.log_path(name, port) for name in ("voila", "jupyterlab") for port in (8866, 8870)}
    assert len(logs) == 4
    assert server.log_path("voila", 8866) == Path(sys.prefix) / "etc" / "labviz" / "voila-8866.log"


def test_the_apps_pool_counts_and_hands_out_ready_kernels_only():
    from labviz.servers.voila_pool import ready, ready_first

    loop = asyncio.new_event_loop()
    try:
        pending, done, failed, cancelled = (loop.create_future() for _ in range(4))
        done.set_result({"kernel_id": "k"})
        failed.set_exception(RuntimeError("the kernel died"))
        cancelled.cancel()
        assert [ready(t) for t in (pending, done, failed, cancelled)] == [False, True, False, False]
        pool = [pending, failed, done]  # a replacement waiting to start comes first
        assert ready_first(pool) and pool == [done, pending, failed]
        assert not ready_first(waiting := [pending]) and waiting == [pending]
    finally:
        loop.close()


def test_app_command_serves_voila_on_loopback_with_a_token(tmp_path):
    cmd = server.app_command(tmp_path / "app.ipynb", "z" * 32, port=8900)
    assert cmd[1:4] == ["-m", "labviz.servers.voila_pool", str(tmp_path / "app.ipynb")]  # Voilà
    assert "--Voila.ip=127.0.0.1" in cmd and "--port=8900" in cmd and "--no-browser" in cmd
    assert f"--token={'z' * 32}" in cmd and "--strip_sources=True" in cmd
    with pytest.raises(ValueError, match="`token` must be at least 16 characters"):
        server.app_command(tmp_path / "app.ipynb", "short")
    assert not any("preheat" in a for a in cmd)  # no pool unless asked
    assert "--VoilaConfiguration.extension_denylist=jupyterlab-plotly" in cmd
    pooled = server.app_command(tmp_path / "app.ipynb", "z" * 32, pool_size=6)
    assert "--preheat_kernel=True" in pooled and "--pool_size=6" in pooled
    assert "--Voila.ip=127.0.0.1" in pooled
    with pytest.raises(ValueError, match="`pool_size` must be an int >= 0; got -1"):
        server.app_command(tmp_path / "app.ipynb", "z" * 32, pool_size=-1)
    assert "--KernelManager.transport=ipc" in pooled  # Unix sockets: no port races in a pool
    # a taken kernel is replaced after ten minutes unless told, once a class has come in
    assert f"--VoilaKernelManager.fill_delay={server.DEFAULT_REFILL_AFTER}" in pooled
    assert server.DEFAULT_REFILL_AFTER == 600.0
    quick = server.app_command(tmp_path / "app.ipynb", "z" * 32, pool_size=2, refill_after=1)
    assert "--VoilaKernelManager.fill_delay=1.0" in quick
    for bad in (-1, float("inf"), float("nan"), "10", True):
        with pytest.raises(ValueError, match="`refill_after` must be a number of seconds >= 0"):
            server.app_command(tmp_path / "app.ipynb", "z" * 32, pool_size=2, refill_after=bad)


@pytest.mark.service
def test_start_server_reports_an_early_exit_with_the_log_tail(tmp_path):
    cmd = [sys.executable, "-c", "print('port 8888 is already in use', flush=True); raise SystemExit(3)"]
    with pytest.raises(server.ServerError, match=r"(?s)exited with code 3.*port 8888 is already in use"):
        server.start_server(cmd, ready=server.answers("http://127.0.0.1:9/"), log=tmp_path / "s.log",
                            name="Test server")


@pytest.mark.service
def test_start_server_stops_a_server_that_never_answers(tmp_path):
    cmd = [sys.executable, "-c", "import time; print('still loading', flush=True); time.sleep(60)"]
    started = time.monotonic()
    with pytest.raises(server.ServerError, match=r"(?s)did not answer within 1 s.*still loading"):
        server.start_server(cmd, ready=server.answers("http://127.0.0.1:9/"), log=tmp_path / "s.log",
                            name="Test server", timeout_s=1)
    assert time.monotonic() - started < 30


@pytest.mark.service
def test_labviz_lab_on_a_taken_port_fails_with_the_log_tail(tmp_path):
    with socket.socket() as taken:
        taken.bind((server.LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = server.log_path("jupyterlab", port)
        try:
            proc = subprocess.Popen([sys.executable, "-m", "labviz.cli", "lab", "--port", str(port),
                                     "--notebooks", str(tmp_path)], text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            out, _ = proc.communicate(timeout=120)
            assert str(port) in log.read_text()  # its own log, named by its port
        finally:
            log.unlink(missing_ok=True)
    assert proc.returncode == 1
    assert f"(log: {log})" in out and "JupyterLab on http" not in out
    assert re.search(rf"JupyterLab exited with code \d+; the end of its log .*\n(?s:.*){port}", out), out
