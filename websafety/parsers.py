"""DRF's JSON parser with two limits: nesting depth and NUL characters. Python's json module
recurses, so `[` × 100000 raised RecursionError (a 500), and ~950 levels parsed but broke
whatever walked the result next; a NUL (written \\u0000) in any string would reach PostgreSQL,
which refuses it. Both are answered 400 here, for every endpoint, before a view sees the data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32  # the deepest body this API takes is 3 levels (a run's params); room to spare


def _check(data: Any) -> None:
    # Iterative: a walk that recursed would fail on the very bodies it guards against.
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise ParseError("JSON strings may not contain NUL characters (\\u0000).")
        elif isinstance(value, Mapping | list):
            if depth > MAX_DEPTH:
                raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
            items = list(value.items()) if isinstance(value, Mapping) else value
            for item in items:
                if isinstance(item, tuple):
                    stack.append((item[0], depth))
                    stack.append((item[1], depth + 1))
                else:
                    stack.append((item, depth + 1))


class SafeJSONParser(JSONParser):
    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.") from None
        _check(data)
        return data
