"""Launch JupyterLab and the Voilà classroom app safely: bound to 127.0.0.1, token authentication on,
never disabled.

``lab_config`` and ``app_command`` are the whole server configuration labviz generates; tests check
them.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

LOOPBACK = "127.0.0.1"


def lab_config(token: str, notebook_dir: Path, *, port: int = 8888) -> dict:
    """The Jupyter server configuration that ``labviz lab`` runs with.

    It binds to loopback only, requires ``token``, and opens no browser (the URL is printed).
    """
    _check_token(token)
    return {
        "ServerApp": {
            "ip": LOOPBACK,
            "port": port,
            "open_browser": False,
            "root_dir": str(notebook_dir),
            "allow_remote_access": False,
            "allow_root": True,
        },
        "IdentityProvider": {"token": token},
    }


def write_config(path: Path, config: dict) -> Path:
    """Write ``config`` as JSON readable only by its owner (it holds the token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=1)
    return path


def launch_lab(notebook_dir: Path, *, port: int = 8888) -> int:
    """Run JupyterLab on ``notebook_dir`` until it is stopped; print the URL with its token."""
    token = secrets.token_hex(24)
    config_path = write_config(Path(sys.prefix) / "etc" / "labviz" / "jupyter_server_config.json",
                               lab_config(token, notebook_dir, port=port))
    print(f"JupyterLab on http://{LOOPBACK}:{port}/lab?token={token}", flush=True)
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--config={config_path}"]
    return subprocess.call(cmd)


def _check_token(token: str) -> None:
    if not token or len(token) < 16:
        raise ValueError(f"`token` must be at least 16 characters; got {len(token or '')}.")


def app_command(notebook: Path, token: str, *, port: int = 8866) -> list[str]:
    """The Voilà command line that ``labviz app`` (``make app``) runs.

    Voilà executes ``notebook`` in a fresh kernel for each visitor and shows only its outputs (no
    code cells). The server binds to loopback only, requires ``token`` and opens no browser.
    """
    _check_token(token)
    return [sys.executable, "-m", "voila", str(notebook), f"--Voila.ip={LOOPBACK}",
            f"--port={port}", "--no-browser", f"--token={token}", "--strip_sources=True",
            "--theme=light"]


def launch_app(notebook: Path, *, port: int = 8866) -> int:
    """Serve ``notebook`` with Voilà until it is stopped; print the URL with its token."""
    token = secrets.token_hex(24)
    print(f"labviz classroom app on http://{LOOPBACK}:{port}/?token={token}", flush=True)
    return subprocess.call(app_command(notebook, token, port=port))
