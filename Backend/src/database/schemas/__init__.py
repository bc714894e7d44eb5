"""Pydantic models per domain (the CRUD-model pattern): `XCreate` (what a new row needs), `XUpdate` (every
field optional; only the fields set are written), `XSearch` (filters) and `XRead` (built from an ORM object
with `XRead.model_validate(obj)`). Usable by a FastAPI app as request and response bodies; the repository
functions accept them as well as ORM objects and mappings.
"""
