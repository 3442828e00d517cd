"""``rallypoint task`` against a running node: add, list, show, status; bad input is a clear CLI error."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from rallypoint.clock import ManualClock
from rallypoint.node.core import Node
from tests.integration.test_tasks import PASSWORD, node  # noqa: F401 (the node fixture)


async def task_cli(server: Node, *args: str) -> tuple[int, str, str]:
    """Run ``rallypoint task ARGS`` in a subprocess (the node serves from this process's event loop)."""
    env = {**os.environ, "RALLYPOINT_URL": f"http://127.0.0.1:{server.ports['http']}",
           "RALLYPOINT_USER": "alice", "RALLYPOINT_PASSWORD": PASSWORD, "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rallypoint.cli.main", "task", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_add_list_show_and_status(node: tuple[Node, ManualClock]) -> None:  # noqa: F811
    server, _ = node
    code, out, err = await task_cli(server, "add", "Sweep sector B", "--callsign", "ALPHA", "--at", "39.1,-120.0",
                                    "--due", "2h", "--details", "from the north", "--priority", "1")
    assert code == 0, err
    task_id = out.strip()
    code, out, err = await task_cli(server, "list", "--json")
    assert code == 0, err
    assert [t["id"] for t in json.loads(out)] == [task_id]
    code, out, err = await task_cli(server, "status", task_id, "done", "--note", "all clear")
    assert (code, out.strip()) == (0, f"{task_id} done"), err
    code, out, err = await task_cli(server, "show", task_id)
    assert code == 0, err
    assert "Sweep sector B" in out and "all clear" in out and "callsign ALPHA" in out
    assert "P1" in out and "details: from the north" in out


async def test_bad_input_is_a_clear_error(node: tuple[Node, ManualClock]) -> None:  # noqa: F811
    server, _ = node
    for args, words in (
        (("add", "x", "--callsign", "A", "--at", "nan,0"), "finite"),
        (("add", "x", "--callsign", "A", "--due", "3000-01-01T00:00Z"), "between 2000 and 2100"),
        (("add", "x", "--callsign", "A", "--hae", "-1e9"), "metres"),
        (("add", "x"), "exactly one of"),
        (("add", "x", "--callsign", "A", "--priority", "6"), "at most 5"),
        (("status", "nope", "teleported"), "one of"),
    ):
        code, _, err = await task_cli(server, *args)
        assert code == 2 and words in err, (args, err)
    code, _, err = await task_cli(server, "show", "0123456789abcdef")
    assert code == 1 and "404 not_found" in err
    code, _, err = await task_cli(server, "add", "x", "--callsign", "A", "--mission", "nowhere")
    assert code == 1 and "400 invalid_task" in err and "nowhere" in err
