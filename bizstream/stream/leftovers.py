"""What an agent leaves on disk in its own name — its health file ``<cache>/health/<app>@<host>-<pid>.json`` and
faust's data folder ``<cache>/faust/<app>@<host>-<pid>-<8 hex>`` — goes when the process exits, and what a process
of this host killed outright (SIGKILL, a crash) left behind is removed by the next agent that starts there, so
restarts do not pile them up. The host is in the name because containers sharing a volume do not see each other's
processes: only this host's leftovers are checked against this host's process ids."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import socket
from pathlib import Path

_OWNED = re.compile(r"@(?P<host>[^@/]+)-(?P<pid>\d+)(?:-[0-9a-f]{8})?(?:\.json)?$")


def claim(folder: Path, name: str, suffix: str = "") -> Path:
    """``folder/<name>@<host>-<pid><suffix>``, this process's: the orphans beside it are removed now, and it goes
    when the process exits normally (one that ends with os._exit calls :func:`remove` itself)."""
    remove_orphans(folder)
    path = folder / f"{name}@{socket.gethostname()}-{os.getpid()}{suffix}"
    atexit.register(remove, path)
    return path


def owner(path: Path) -> tuple[str, int] | None:
    """(host, process id) a leftover's name carries, or None for a name that is not one."""
    found = _OWNED.search(path.name)
    return (found["host"], int(found["pid"])) if found else None


def remove_orphans(folder: Path) -> list[Path]:
    """Remove this host's leftovers in ``folder`` whose process no longer runs; return them."""
    host, removed = socket.gethostname(), []
    for path in sorted(folder.glob("*@*")) if folder.is_dir() else []:
        owned = owner(path)
        if owned is not None and owned[0] == host and not _running(owned[1]):
            remove(path)
            removed.append(path)
    return removed


def remove(path: Path) -> None:
    """Remove a leftover file or folder; one already gone (another agent got there first) is fine."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
