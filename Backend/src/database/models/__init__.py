"""The ORM models, one module per PostgreSQL schema. Importing this package registers them all on Base."""

from src.database.models.agents import Execution, ExecutionStatus
from src.database.models.base import Base
from src.database.models.messaging import Chat, Message, MessageRole
from src.database.models.tasks import Todo, TodoStatus
from src.database.models.telegram import TelegramSession

__all__ = [
    "Base",
    "Chat",
    "Execution",
    "ExecutionStatus",
    "Message",
    "MessageRole",
    "TelegramSession",
    "Todo",
    "TodoStatus",
]
