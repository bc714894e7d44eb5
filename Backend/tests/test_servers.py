"""The suite's own embedded servers survive what other test runs on the machine do to pytest's temp folders.

Every pytest that starts makes its temp root (`/tmp/pytest-of-<user>`) private again, mode 0700. Run as
root, an embedded server runs as the wheel's system user, which then can no longer reach a data folder
under that root: the server stops at its next checkpoint ("could not open file .../global/pg_control:
Permission denied"), and every test after it fails with "connection refused". That is how full runs with
pytest's default temp folder lost their server while other test runs started on the machine. So the suite
keeps its servers' data in `server_root` (conftest), outside pytest's temp folders; here this session's
temp folder is made private, as another pytest makes its root, and the servers must go on working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import pytest

from tests.support import PrivateServer

if TYPE_CHECKING:
    from tests.conftest import TestServer  # imported for real, pytest would try to collect it


async def test_the_servers_keep_working_when_pytests_temp_folder_becomes_private(
    pg_server: TestServer, private_server: PrivateServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    basetemp = tmp_path_factory.getbasetemp()
    servers = {"a private server": (private_server.settings, private_server.server.data_dir)}
    if pg_server.embedded_dir is not None:
        servers["the session's server"] = (pg_server.admin, pg_server.embedded_dir)
    for name, (_, data_dir) in servers.items():
        assert not data_dir.resolve().is_relative_to(basetemp.resolve()), f"{name} keeps its data under {basetemp}"
    mode = basetemp.stat().st_mode & 0o777
    basetemp.chmod(0o700)
    try:
        for name, (settings, _) in servers.items():
            conn = await asyncpg.connect(**settings.asyncpg_kwargs())
            try:
                await conn.execute("CHECKPOINT")  # writes global/pg_control, what failed out of reach
                assert await conn.fetchval("SELECT 1") == 1, name
            finally:
                await conn.close()
    finally:
        basetemp.chmod(mode)
