"""Repository functions agent code calls: async, the session first, one module per schema.

    from src.database.repositories import create_todo, get_todos, get_todos_by_status, update_todo

Writes follow one rule (`src.database.sessions`): a write commits by itself unless the caller owns the
transaction (`manager.transaction()`, or after `await session.begin()`), where it joins it. Bad input
raises ValueError before any SQL is sent; a missing row reads as None (or False for deletes); a reference
to a row that does not exist raises LookupError.
"""

from src.database.repositories.agents import (
    find_executions_by_metadata,
    finish_execution,
    list_executions_by_status,
    start_execution,
)
from src.database.repositories.messaging import (
    add_message,
    add_messages,
    create_chat,
    delete_chat,
    get_chat,
    get_chat_with_recent_messages,
    get_recent_messages,
    list_chats,
    list_messages,
    search_chats,
    search_messages,
    update_chat,
)
from src.database.repositories.paging import Page
from src.database.repositories.tasks import (
    create_todo,
    create_todos,
    delete_todo,
    get_todo,
    get_todos,
    get_todos_by_status,
    list_todos,
    search_todos,
    update_todo,
)
from src.database.repositories.telegram import expire_sessions, get_session, update_session, upsert_session

__all__ = [
    "Page",
    "add_message",
    "add_messages",
    "create_chat",
    "create_todo",
    "create_todos",
    "delete_chat",
    "delete_todo",
    "expire_sessions",
    "find_executions_by_metadata",
    "finish_execution",
    "get_chat",
    "get_chat_with_recent_messages",
    "get_recent_messages",
    "get_session",
    "get_todo",
    "get_todos",
    "get_todos_by_status",
    "list_chats",
    "list_executions_by_status",
    "list_messages",
    "list_todos",
    "search_chats",
    "search_messages",
    "search_todos",
    "start_execution",
    "update_chat",
    "update_session",
    "update_todo",
    "upsert_session",
]
