"""The user's code by reference: `"package.module:attribute"` resolved to the function's Registry.

The runtime never imports the user's package by name. The entry points (`python -m eventfn
serve TARGET`, `eventfn.asgi:app`, func's `function.new()`) are handed an import string, the
`FUNCTION_REGISTRY` setting unless the command line gives one, as uvicorn is handed `module:app`
and functions-framework a `--target`. Resolving it imports the user's module (its handlers
register there), so this happens once, at start-up, never at the import of `eventfn`.
"""

from __future__ import annotations

import importlib

from eventfn.dispatch.registry import Registry


class RegistryNotFound(LookupError):
    """An import string that does not name a Registry; the message names the string and why.

    Not an `eventfn.core.errors.FunctionError`: this is a start-up failure of the process, never
    an answer to a request.
    """


def load_registry(target: str) -> Registry:
    """The Registry that `target` (`"module.path:attribute"`) names, imported now."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise RegistryNotFound(
            f"{target!r} is not an import string: expected 'module.path:attribute', "
            "e.g. 'handler.functions:registry'"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a missing target module is reported as such; a module that exists but fails
        # on an import of its own says which one (exc.name) rather than blaming the target.
        missing = exc.name or module_name
        own = module_name == missing or module_name.startswith(f"{missing}.")
        where = "" if own else f" (it imports {missing!r}, which is not installed)"
        raise RegistryNotFound(
            f"{target!r}: module {module_name!r} cannot be imported{where}"
        ) from exc
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise RegistryNotFound(
                f"{target!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    if not isinstance(value, Registry):
        raise RegistryNotFound(f"{target!r} is a {type(value).__name__}, not an eventfn.Registry")
    return value
