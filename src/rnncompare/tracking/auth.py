"""A team server with MLflow's basic-auth app: its configuration written for the server process alone, and the
admin password read from the environment or a file, never from the command line (where `ps` shows it)."""

from __future__ import annotations

import configparser
import ipaddress
import os
import secrets
import socket
import tempfile
from pathlib import Path

from rnncompare.core.errors import UserError
from rnncompare.tracking.store import check_sqlite_file

PASSWORD_VARIABLE = "RNNCOMPARE_SERVER_ADMIN_PASSWORD"
# MLflow's own: clients send these as the request's basic-auth credentials
CLIENT_USERNAME_VARIABLE = "MLFLOW_TRACKING_USERNAME"
CLIENT_PASSWORD_VARIABLE = "MLFLOW_TRACKING_PASSWORD"
# the same entry point `mlflow server --app-name basic-auth` names in MLflow's own configuration
AUTHORIZATION_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) only serves this machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return False
    return bool(addresses) and all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


def admin_password(password_file: str | None) -> str:
    """The admin password: the file `password_file` (its first line), else $RNNCOMPARE_SERVER_ADMIN_PASSWORD."""
    if password_file is not None:
        path = Path(password_file)
        try:
            password = path.read_text(encoding="utf-8").splitlines()[0].strip() if path.is_file() else None
        except (OSError, UnicodeDecodeError, IndexError) as exc:
            raise UserError(f"--admin-password-file: cannot read {path} ({exc})") from None
        if password is None:
            raise UserError(f"--admin-password-file: {path}: file not found")
    else:
        password = os.environ.get(PASSWORD_VARIABLE, "").strip()
    if not password:
        where = (
            f"--admin-password-file {password_file} is empty" if password_file else f"${PASSWORD_VARIABLE} is not set"
        )
        raise UserError(
            f"--auth: {where}; give the admin password in ${PASSWORD_VARIABLE} or in a file named by "
            "--admin-password-file (never on the command line)"
        )
    if len(password) < 12:
        raise UserError("--auth: the admin password must be at least 12 characters")
    return password


def auth_environment(admin: str, password: str, database_uri: str) -> tuple[dict[str, str], Path]:
    """The environment for `mlflow server --app-name basic-auth`, and the private folder of its configuration
    (remove it when the server stops). Users and permissions are kept in `database_uri`."""
    folder = Path(tempfile.mkdtemp(prefix="rnncompare-auth-"))  # mode 0700
    config = configparser.ConfigParser(interpolation=None)
    config["mlflow"] = {
        "default_permission": "READ",
        "database_uri": database_uri,
        "admin_username": admin,
        "admin_password": password,
        "authorization_function": AUTHORIZATION_FUNCTION,
    }
    path = folder / "basic_auth.ini"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        config.write(file)
    environment = {
        "MLFLOW_AUTH_CONFIG_PATH": str(path),
        # CSRF protection of the auth app's forms; kept if the team set one (several servers share it)
        "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or secrets.token_hex(32),
    }
    return environment, folder


def check_auth_database(uri: str) -> None:
    """Refuse with one line a SQLite users database that cannot be written (MLflow's auth app would fail with a
    traceback); other databases are the auth app's to reach. Unlike the tracking store's check, it leaves the
    database to the auth app, which creates its own tables there."""
    if uri.startswith("sqlite:///"):
        check_sqlite_file(Path(uri[len("sqlite:///") :]), uri, "--auth-database-uri")
