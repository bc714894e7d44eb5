"""Piccolo on the project's tables, written as its documentation writes tables and queries (the objects
API, which returns model instances as the other ORMs do).

Benchmark-only (the `bench` extra); data_bench.py loads it when piccolo is installed.
"""

from __future__ import annotations

import uuid
import warnings
from typing import Any

from piccolo.columns import JSONB, UUID, SmallInt, Text, Timestamptz
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from src.postgres.settings import ConnectionSettings


class Tables:
    """The tables bound to one engine (Piccolo binds a table to its engine when the class is made)."""

    def __init__(self, db: ConnectionSettings, pool: int) -> None:
        config: dict[str, Any] = {"host": db.host, "port": db.port, "user": db.user, "database": db.database}
        if db.password:
            config["password"] = db.password.get_secret_value()
        with warnings.catch_warnings():
            # It asks the server's version at once, synchronously, which it cannot inside a running loop; the
            # version only chooses SQL for servers older than the one of the benchmark.
            warnings.simplefilter("ignore")
            self.engine = PostgresEngine(config=config, log_queries=False, extensions=())
        self.pool = pool
        engine = self.engine

        class Todo(Table, tablename="todos", schema="tasks", db=engine):
            id = UUID(primary_key=True)
            title = Text()
            description = Text(null=True, default=None)
            status = Text(default="pending")
            priority = SmallInt(default=3)
            chat_id = UUID(null=True, default=None)
            due_at = Timestamptz(null=True, default=None)
            completed_at = Timestamptz(null=True, default=None)
            created_at = Timestamptz()
            updated_at = Timestamptz()
            metadata = JSONB(default="{}")

        class Message(Table, tablename="messages", schema="messaging", db=engine):
            id = UUID(primary_key=True)
            chat_id = UUID()
            role = Text()
            content = Text()
            created_at = Timestamptz()
            updated_at = Timestamptz()
            metadata = JSONB(default="{}")

        self.Todo = Todo
        self.Message = Message

    async def start(self) -> None:
        await self.engine.start_connection_pool(min_size=self.pool, max_size=self.pool)

    async def stop(self) -> None:
        await self.engine.close_connection_pool()

    async def get_todo(self, todo_id: uuid.UUID) -> Any:
        return await self.Todo.objects().where(self.Todo.id == todo_id).first()

    async def create_todo(self, title: str) -> Any:
        return await self.Todo.objects().create(title=title)

    async def update_todo(self, todo_id: uuid.UUID, priority: int) -> Any:
        todo = self.Todo
        rows = await todo.update({todo.priority: priority}).where(todo.id == todo_id).returning(*todo.all_columns())
        return rows[0] if rows else None

    async def todos_by_status(self, status: str, limit: int) -> Any:
        todo = self.Todo
        newest = todo.objects().where(todo.status == status).order_by(todo.created_at, todo.id, ascending=False)
        return await newest.limit(limit)

    async def recent_messages(self, chat_id: uuid.UUID, limit: int) -> Any:
        m = self.Message
        return await m.objects().where(m.chat_id == chat_id).order_by(m.created_at, m.id, ascending=False).limit(limit)
