"""Pydantic models per domain (the CRUD-model pattern): `XCreate` (what a new row needs), `XUpdate` (every
field optional; only the fields set are written), `XSearch` (filters) and `XRead` (built from an ORM object
with `XRead.model_validate(obj)`). Usable by a FastAPI app as request and response bodies; the repository
functions accept them as well as ORM objects and mappings.
"""

from src.database.schemas.agents import ExecutionFinish, ExecutionRead, ExecutionStart
from src.database.schemas.messaging import (
    ChatCreate,
    ChatRead,
    ChatSearch,
    ChatUpdate,
    ChatWithMessages,
    MessageBody,
    MessageCreate,
    MessageRead,
    MessageSearch,
)
from src.database.schemas.tasks import TodoCreate, TodoRead, TodoSearch, TodoUpdate
from src.database.schemas.telegram import TelegramSessionCreate, TelegramSessionRead, TelegramSessionUpdate

__all__ = [
    "ChatCreate",
    "ChatRead",
    "ChatSearch",
    "ChatUpdate",
    "ChatWithMessages",
    "ExecutionFinish",
    "ExecutionRead",
    "ExecutionStart",
    "MessageBody",
    "MessageCreate",
    "MessageRead",
    "MessageSearch",
    "TelegramSessionCreate",
    "TelegramSessionRead",
    "TelegramSessionUpdate",
    "TodoCreate",
    "TodoRead",
    "TodoSearch",
    "TodoUpdate",
]
