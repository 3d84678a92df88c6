"""A fast renderer for the usual shape of message templates: text, `{{ a.b.c }}` and
`{{ a.b | default: "x" }}`.

Batch sends render every message (goal: 20,000 messages/s on 2 cores). python-liquid's
general renderer costs ~80 µs per subject+body; this path a few µs. Anything outside that
shape (tags, other filters, index segments) keeps python-liquid for the whole template, and a
value this path cannot stringify exactly like Liquid (floats, booleans, lists, a missing
`size`/`first`/`last`) falls back to python-liquid for that one message. So the output is
always python-liquid's: tests/test_rendering.py checks both on generated templates and data.
"""

from typing import Any, Callable

from liquid import BoundTemplate
from liquid.builtin.content import ContentNode
from liquid.builtin.expressions import FilteredExpression, Path, StringLiteral
from liquid.builtin.expressions.arguments import PositionalArgument
from liquid.builtin.output import OutputNode

# Liquid resolves these on a dict that lacks the key (hash.size is its length...).
_SPECIAL_KEYS = frozenset({"size", "first", "last"})


class _Fallback(Exception):
    """This value needs the general renderer."""


class _Output:
    __slots__ = ("path", "default")

    def __init__(self, path: tuple[str, ...], default: str | None):
        self.path, self.default = path, default

    def value(self, context: dict[str, Any]) -> str:
        value: Any = context
        for segment in self.path:
            if type(value) is not dict:
                if value is None:  # undefined so far: stays undefined
                    break
                raise _Fallback
            if segment not in value:
                if segment in _SPECIAL_KEYS:
                    raise _Fallback
                value = None
                break
            value = value[segment]
        if type(value) is str:
            if value or self.default is None:
                return value
            return self.default
        if value is None:
            return self.default or ""
        if type(value) is int:
            return str(value)  # 0 is truthy in Liquid: `default` keeps it
        raise _Fallback


def compile_fast(template: BoundTemplate) -> Callable[[dict[str, Any]], str] | None:
    """A render function for `template`, or None when it is outside the fast shape."""
    parts: list[str | _Output] = []
    for node in template.nodes:
        if type(node) is ContentNode:
            parts.append(node.text)
        elif type(node) is OutputNode:
            output = _output(node.expression)
            if output is None:
                return None
            parts.append(output)
        else:
            return None

    def render(context: dict[str, Any]) -> str:
        try:
            return "".join([p if type(p) is str else p.value(context) for p in parts])  # type: ignore[union-attr]
        except _Fallback:
            return template.render(**context)

    return render


def _output(expression: Any) -> _Output | None:
    if type(expression) is not FilteredExpression or type(expression.left) is not Path:
        return None
    path = expression.left.path
    if not path or not all(type(segment) is str for segment in path):
        return None
    filters = expression.filters or []
    if not filters:
        return _Output(tuple(path), None)
    if len(filters) == 1 and filters[0].name == "default" and len(filters[0].args) == 1:
        argument = filters[0].args[0]
        if type(argument) is PositionalArgument and type(argument.value) is StringLiteral:
            return _Output(tuple(path), argument.value.value)
    return None
