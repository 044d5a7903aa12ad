"""Printing a command's result: one JSON object (--json) or human text. The only place
that prints results; analysis functions return data.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def emit(
    args: argparse.Namespace, result: dict[str, Any], human: Callable[[dict[str, Any]], str]
) -> None:
    """Print `result` as one JSON object (--json) or as human text."""
    if getattr(args, "json", False):
        print(json.dumps(_jsonable(result), sort_keys=True))
    else:
        print(human(result))
