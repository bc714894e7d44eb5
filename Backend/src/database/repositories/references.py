"""Rows a write refers to, checked before the write, so a missing one is a LookupError naming it rather
than a foreign-key violation that aborts the caller's transaction.

The check locks the rows it finds (`FOR KEY SHARE`, the lock the foreign key's own check takes at the
INSERT, only earlier), so a chat deleted by another transaction between the check and the write cannot
happen: that delete waits for this transaction to end, and a delete already under way makes the check
wait for it and then report the chat as missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from src.database.errors import NotFound
from src.database.models import Chat


async def require_chats(session: AsyncSession, chat_ids: Sequence[uuid.UUID], *, field: str | Sequence[str]) -> None:
    """NotFound naming the first chat in `chat_ids` that does not exist (one query for all of them).

    `field` names where the id came from: one name for all, or one per id (`todos[3].chat_id`).
    """
    wanted = list(dict.fromkeys(chat_ids))
    if not wanted:
        return
    query = select(Chat.id).where(Chat.id.in_(wanted)).with_for_update(key_share=True, read=True)
    found = set((await session.scalars(query)).all())
    for index, chat_id in enumerate(chat_ids):
        if chat_id not in found:
            raise NotFound("chat", chat_id, field=field if isinstance(field, str) else field[index])
