"""Tortoise ORM on the project's tables, written as its documentation writes models and queries.

Benchmark-only (the `bench` extra); data_bench.py loads it when tortoise-orm is installed.
"""

from __future__ import annotations

import uuid
from typing import Any

from tortoise import Tortoise, fields
from tortoise.models import Model

from src.postgres.settings import ConnectionSettings


class Chat(Model):
    id = fields.UUIDField(primary_key=True)
    title = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    metadata: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "chats"
        schema = "messaging"


class Message(Model):
    id = fields.UUIDField(primary_key=True)
    chat_id = fields.UUIDField()
    role = fields.TextField()
    content = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    metadata: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "messages"
        schema = "messaging"


class Todo(Model):
    id = fields.UUIDField(primary_key=True)
    title = fields.TextField()
    description = fields.TextField(null=True)
    status = fields.TextField(default="pending")
    priority = fields.SmallIntField(default=3)
    chat_id = fields.UUIDField(null=True)
    due_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    metadata: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "todos"
        schema = "tasks"


async def start(db: ConnectionSettings, pool: int) -> None:
    credentials: dict[str, Any] = {
        "host": db.host,
        "port": db.port,
        "user": db.user,
        "password": db.password.get_secret_value() if db.password else "",
        "database": db.database,
        "minsize": pool,
        "maxsize": pool,
    }
    await Tortoise.init(
        config={
            "connections": {"default": {"engine": "tortoise.backends.asyncpg", "credentials": credentials}},
            "apps": {"bench": {"models": [__name__], "default_connection": "default"}},
        }
    )


async def stop() -> None:
    await Tortoise.close_connections()


async def get_todo(todo_id: uuid.UUID) -> Any:
    return await Todo.get_or_none(id=todo_id)


async def create_todo(title: str) -> Any:
    return await Todo.create(title=title)


async def update_todo(todo_id: uuid.UUID, priority: int) -> Any:
    # Tortoise has no UPDATE ... RETURNING: the documented way is an update, then a read.
    await Todo.filter(id=todo_id).update(priority=priority)
    return await Todo.get_or_none(id=todo_id)


async def todos_by_status(status: str, limit: int) -> Any:
    return await Todo.filter(status=status).order_by("-created_at", "-id").limit(limit)


async def recent_messages(chat_id: uuid.UUID, limit: int) -> Any:
    return await Message.filter(chat_id=chat_id).order_by("-created_at", "-id").limit(limit)
