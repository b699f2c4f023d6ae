"""A pytest plugin standing in for a user who changed the example
(tests/repo/test_suite_function.py).

    python -m pytest -p tests.functions.replaced_example ...   REPLACED_EXAMPLE=first|removed

`first`: a new type comes first in the example's catalogue (so it is the default type: plain JSON
`POST /`, typeless WebSocket messages, `send` without --type), the example's types after it.
`removed`: `handler/` and `schemas/` hold that new type alone; the example's modules are gone.
Installed in `sys.modules` when pytest loads the plugin, before any test module is imported.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from pydantic import BaseModel

from eventfn import Catalogue, EventSpec, Registry


class Greeting(BaseModel):
    name: str


class Greeted(BaseModel):
    message: str


GREETED = EventSpec("org.eventfn.stand-in.greeted", Greeted, "The answer to a greeting.")
GREETING = EventSpec(
    "org.eventfn.stand-in.greeting",
    Greeting,
    "A greeting: the user's new type.",
    consumes=True,
    reply=GREETED,
    name="stand-in-greeting",
)


async def greet(greeting: Greeting) -> Greeted:
    return Greeted(message=f"Hello, {greeting.name}")


def _new_type_first() -> None:
    """The example's catalogue with GREETING first; its registry handles both."""
    schemas = importlib.import_module("schemas")
    catalogue = Catalogue((GREETING, *schemas.CATALOGUE.specs))
    schemas.CATALOGUE = catalogue
    importlib.import_module("schemas.catalogue").CATALOGUE = catalogue
    functions = importlib.import_module("handler.functions")  # builds its registry on `catalogue`
    functions.registry.handles(GREETING)(greet)


def _module(name: str, **attributes: object) -> ModuleType:
    module = ModuleType(name)
    module.__dict__.update(attributes)
    module.__path__ = []  # a package: its submodules are looked up in sys.modules
    sys.modules[name] = module
    return module


def _example_removed() -> None:
    """`schemas` and `handler.functions` with GREETING alone; `schemas.query` does not exist."""
    catalogue = Catalogue((GREETING,))
    registry = Registry(catalogue)
    registry.handles(GREETING)(greet)
    found = {"CATALOGUE": catalogue, "GREETING": GREETING, "GREETED": GREETED}
    _module("schemas", **found)
    _module("schemas.catalogue", **found)
    sys.modules["schemas.query"] = None  # type: ignore[assignment]  # import raises ImportError
    _module("handler")
    _module("handler.functions", registry=registry, greet=greet)


VARIANTS = {"first": _new_type_first, "removed": _example_removed}
VARIANTS[os.environ["REPLACED_EXAMPLE"]]()
