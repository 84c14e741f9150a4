"""The house rules of the layout, as a newcomer reads them in the README: each room has one
concern, the rules import nothing that runs them, flows/ holds only flows and tasks, each
rule exists once, and the rooms are reached only through the one installed package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("config", "models", "notifications", "steps", "spreadsheets", "reports", "flows", "interfaces", "operations")
#: what each room may import from the others (the arrows of README's "How it fits together")
MAY_IMPORT = {
    "config": {"models"},  # the vocabulary (models/domain.py) and the date parser (models/dates.py) only
    "models": {"config"},
    "notifications": {"config", "models"},
    "steps": {"config", "models", "notifications"},
    "spreadsheets": {"config", "models"},
    "reports": {"config", "models", "notifications", "spreadsheets"},
    "flows": {"config", "models", "notifications", "steps", "spreadsheets", "reports"},
    "operations": {"config", "models"},
    "interfaces": set(ROOMS) - {"interfaces"},
}


def modules(room: str) -> list[Path]:
    return sorted(p for p in (ROOT / room).rglob("*.py") if "migrations" not in p.parts or p.name == "env.py")


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_every_room_is_a_subpackage_of_followup():
    for room in ROOMS:
        link = ROOT / "followup" / room
        assert link.is_symlink() and link.resolve() == (ROOT / room).resolve(), f"followup/{room} must link to {room}/"
        assert (ROOT / room / "__init__.py").exists()


@pytest.mark.parametrize("room", ROOMS)
def test_a_room_imports_the_others_only_through_followup_and_only_downwards(room):
    for path in modules(room):
        for name in imported_modules(path):
            top = name.split(".")[0]
            assert top not in ROOMS, f"{path.relative_to(ROOT)} imports {name}: write followup.{name}"
            if top == "followup" and name.count("."):
                other = name.split(".")[1]
                assert other == room or other in MAY_IMPORT[room], (
                    f"{path.relative_to(ROOT)} imports {name}: {room}/ may import only {sorted(MAY_IMPORT[room])}"
                )


def test_config_takes_from_models_only_the_vocabulary_and_the_dates():
    for path in modules("config"):
        for name in imported_modules(path):
            if name.startswith("followup.models"):
                assert name in {"followup.models.domain", "followup.models.dates"}, f"{path.relative_to(ROOT)} imports {name}"


def _decorators(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.add(target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))
    return names


@pytest.mark.parametrize("path", [p for p in modules("flows") if p.name != "__init__.py"], ids=lambda p: p.name)
def test_every_module_in_flows_holds_a_flow_or_a_task(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    decorated = {
        node.name for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _decorators(node) & {"flow", "task"}
    }
    assert decorated, f"flows/{path.name} has no @flow or @task: its code belongs in another room"


def test_each_rule_is_defined_once():
    """One level-2 rule, one effective deadline, one set of status groups, one date parser."""
    definitions: dict[str, list[str]] = {}
    for room in ROOMS:
        for path in modules(room):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef):
                    definitions.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
            for node in tree.body:  # module-level names
                if isinstance(node, ast.Assign | ast.AnnAssign):
                    target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                    if isinstance(target, ast.Name):
                        definitions.setdefault(target.id, []).append(str(path.relative_to(ROOT)))
    for name in ("level2", "effective_due", "days_on_hold", "decide", "parse_date", "as_date",
                 "CLOSED_STATUSES", "ANSWERED_STATUSES", "CLOCK_RUNNING", "WATCHED", "OPEN_STATUSES", "LATE_STATUSES"):
        assert len(definitions.get(name, [])) == 1, f"{name} is defined in {definitions.get(name)}"
    assert not [n for n in definitions if n == "_as_date"], f"_as_date is defined in {definitions['_as_date']}"


def test_no_private_sqlalchemy_name_outside_the_backend():
    """models/backend.py's bind_processor stands in for it; tests/test_backend.py checks they agree."""
    for room in ROOMS:
        for path in modules(room):
            if path == ROOT / "models" / "backend.py":
                continue
            text = path.read_text(encoding="utf-8")
            assert "_cached_bind_processor" not in text, f"{path.relative_to(ROOT)} uses a private SQLAlchemy name"
