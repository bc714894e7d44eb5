"""A FastAPI agent service on the data layer: todo endpoints, /health and /ready.

    uvicorn examples.agent_service.app:app          # DatabaseConfig() from DATABASE_URL / DB_* / .env

The lifespan makes one `DatabaseManager` (one pool) for the process and closes it at shutdown; each
request gets its own session from the `get_session` dependency. Request and response bodies are the
project's pydantic models (`TodoCreate`, `TodoUpdate`, `TodoRead`) and the repository functions do the
work: a write commits by itself in a plain session, so what a POST or PATCH answered is stored.

Errors become HTTP answers in one place (`EXCEPTION_HANDLERS`):

    422  a field breaks a rule (body, path, query, or a check in the repository): [{field, problem, allowed}]
    404  no such todo, or the chat a body refers to does not exist
    503  the database cannot be reached, the connection broke, a timeout or the pool ran out; Retry-After
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from src.app.health import HealthApp
from src.database import DatabaseConfig, DatabaseManager
from src.database.errors import DatabaseTimeout, DatabaseUnavailable, InvalidInput, NotFound
from src.database.models import TodoStatus
from src.database.repositories import tasks
from src.database.schemas import TodoCreate, TodoRead, TodoUpdate

RETRY_AFTER_SECONDS = 2
"""What a 503 asks clients to wait before they try again."""


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, closed when the request is done; an exception rolls it back."""
    manager: DatabaseManager = request.app.state.manager
    async with manager.session() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]

router = APIRouter(prefix="/todos", tags=["todos"])


class TodoPage(BaseModel):
    items: list[TodoRead]
    next_cursor: str | None
    """Pass it back as `?after=` for the next page; null on the last page."""


def _no_todo(todo_id: uuid.UUID) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"todo {todo_id} does not exist")


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_todo(session: Session, body: TodoCreate) -> TodoRead:
    todo = await tasks.create_todo(session, body)  # committed when it returns
    return TodoRead.model_validate(todo)


@router.get("")
async def list_todos(
    session: Session,
    status: TodoStatus | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> TodoPage:
    """Newest first, optionally of one status, a page at a time (`after`: the previous page's cursor)."""
    page = await tasks.list_todos(session, status=status, after=after, limit=limit)
    return TodoPage(items=[TodoRead.model_validate(t) for t in page.items], next_cursor=page.next_cursor)


@router.get("/{todo_id}")
async def get_todo(session: Session, todo_id: uuid.UUID) -> TodoRead:
    todo = await tasks.get_todo(session, todo_id)
    if todo is None:
        raise _no_todo(todo_id)
    return TodoRead.model_validate(todo)


@router.patch("/{todo_id}")
async def update_todo(session: Session, todo_id: uuid.UUID, body: TodoUpdate) -> TodoRead:
    """Change only the fields the body sets (`null` clears a nullable field)."""
    todo = await tasks.update_todo(session, todo_id, body)
    if todo is None:
        raise _no_todo(todo_id)
    return TodoRead.model_validate(todo)


@router.delete("/{todo_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_todo(session: Session, todo_id: uuid.UUID) -> None:
    if not await tasks.delete_todo(session, todo_id):
        raise _no_todo(todo_id)


def _unprocessable(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def invalid_input(request: Request, exc: InvalidInput) -> Response:
    """The repository's own checks (e.g. `todo.title` set to null, a cursor it never issued)."""
    return _unprocessable([{"field": e.field, "problem": e.problem, "allowed": e.allowed} for e in exc.errors])


async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """FastAPI's validation of bodies, paths and queries, in the shape of InvalidInput's and, like the data
    layer, without echoing the rejected value (it may be personal data)."""
    found = []
    for error in exc.errors():
        where = [str(part) for part in error["loc"]]
        if error["type"] == "json_invalid":  # the loc's second part is a character offset, not a field
            found.append({"field": where[0], "problem": "is not valid JSON", "allowed": None})
            continue
        field = ".".join(where[1:]) or where[0]  # ("body", "status") -> "status"
        problem = str(error["msg"]).removeprefix("Value error, ")
        problem = problem[:1].lower() + problem[1:]  # "field required" reads like the repository's messages
        found.append({"field": field, "problem": problem, "allowed": error.get("ctx", {}).get("expected")})
    return _unprocessable(found)


async def not_found(request: Request, exc: NotFound) -> Response:
    return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=status.HTTP_404_NOT_FOUND)


async def unavailable(request: Request, exc: DatabaseUnavailable | DatabaseTimeout) -> Response:
    """Worth retrying later: DatabaseUnavailable, ConnectionLost, DatabaseTimeout, PoolExhausted."""
    return JSONResponse(
        {"detail": f"the database is unavailable: {exc}"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


EXCEPTION_HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    RequestValidationError: invalid_request,
    InvalidInput: invalid_input,
    NotFound: not_found,
    # ConnectionLost is a DatabaseUnavailable and PoolExhausted a DatabaseTimeout: two entries cover four.
    DatabaseUnavailable: unavailable,
    DatabaseTimeout: unavailable,
}


class Probes:
    """GET /health and GET /ready: the project's HealthApp (plain ASGI) on the manager the lifespan made.
    (Starlette routes to an object like this as to an ASGI app; a plain function would be a request handler.)"""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["app"].state.probes(scope, receive, send)


def create_app(config: DatabaseConfig | None = None) -> FastAPI:
    """The service; `config` defaults to `DatabaseConfig()` (DATABASE_URL, DB_*, .env), read at startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with DatabaseManager(config or DatabaseConfig()) as manager:  # closed at shutdown
            app.state.manager = manager
            # /ready compares the ledger with MIGRATIONS_DIR, else with the migrations shipped in the package.
            app.state.probes = HealthApp(manager)
            yield

    app = FastAPI(
        title="Agent service",
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        routes=[
            Route("/health", Probes(), methods=["GET"], include_in_schema=False),
            Route("/ready", Probes(), methods=["GET"], include_in_schema=False),
        ],
    )
    app.include_router(router)
    return app


app = create_app()
