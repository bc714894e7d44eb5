"""The names agent code imports are where the docs and the spec say they are."""

from __future__ import annotations

import inspect

from pydantic import BaseModel

import src.database.repositories as repositories
import src.database.schemas as schemas
from src.database.repositories import agents, messaging, tasks, telegram


def test_the_specs_names_import_from_the_repositories_package() -> None:
    from src.database.models import Todo
    from src.database.repositories import create_todo, get_todos, get_todos_by_status, update_todo

    assert Todo.__tablename__ == "todos"
    assert all(inspect.iscoroutinefunction(f) for f in (create_todo, get_todos, get_todos_by_status, update_todo))


def test_every_repository_function_is_exported_from_the_package() -> None:
    for module in (tasks, messaging, agents, telegram):
        functions = {n for n in module.__all__ if inspect.iscoroutinefunction(getattr(module, n))}
        assert functions <= set(repositories.__all__), module.__name__
        assert all(getattr(repositories, n) is getattr(module, n) for n in functions)


def test_every_pydantic_model_is_exported_from_the_schemas_package() -> None:
    from src.database.schemas import agents as agents_models
    from src.database.schemas import messaging as messaging_models
    from src.database.schemas import tasks as tasks_models
    from src.database.schemas import telegram as telegram_models

    for module in (tasks_models, messaging_models, agents_models, telegram_models):
        models = {
            n
            for n, v in vars(module).items()
            if inspect.isclass(v) and v.__module__ == module.__name__ and issubclass(v, BaseModel)
        }
        assert models <= set(schemas.__all__), module.__name__
