"""A small FastAPI agent service on the project's data layer; see README.md beside this file."""
