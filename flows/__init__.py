"""Prefect flows and tasks: each module composes small tasks that call the steps in the other rooms."""
