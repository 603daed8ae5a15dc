"""Three per-item costs of moto's DynamoDB writes removed, responses unchanged.

Measured with py-spy on the emulator during ``scripts/bench_stream.py --e2e`` (500 symbols x
100 bars; the processor writes one results item per bar and one state item per symbol and
batch): of the emulator's busy time, ~24 % went to building items, ~13 % to parsing request
bodies and ~4 % to lexing the same condition expression again for every item. The emulator
is what limits the local stack's throughput (the local runtime waits on its sockets), so
these are its throughput. Each path is proven equal to moto's own code in
``tests/unit/local/moto_patches/test_fastwrites.py``:

* ``dynamodb_item_size_once``: ``Item.__init__`` checks DynamoDB's 400 KB item limit by
  re-summing the sizes of all attributes set so far before it sets each one (``O(n²)`` in
  the attributes; a results item has ~40). A running sum makes the same check at the same
  attribute: ``ItemSizeTooLarge`` (or a bad value's own error) for exactly the same items.
* ``dynamodb_compiled_request_parser``: moto parses every JSON request body by walking its
  botocore shape value by value (``getattr`` dispatch and every member of
  ``AttributeValue`` tried for each attribute). The same walk is compiled once per shape
  into closures: members are looked up in the same order, ``None`` members dropped, blobs
  and timestamps decoded by moto's own parsers, numbers converted the same way.
* ``dynamodb_condition_lexer_cache``: ``ConditionExpressionParser`` lexes a condition with
  regular expressions on every request, while writers send the same few expressions
  (``attribute_not_exists(#v)``, ``#v = :v``). The tokens depend only on the text, so they
  are cached (bounded); parsing, name and value resolution and evaluation are moto's.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from typing import Any

Parse = Callable[[Any], Any]

FAST_PARSE_SERVICES = frozenset({"dynamodb"})
"""Services whose JSON request bodies use the compiled parser (the streaming hot path)."""

LEXER_CACHE_SIZE = 256
"""Distinct condition expressions whose tokens are kept (least recently used dropped)."""


def dynamodb_item_size_once() -> None:
    """Check an item's size against moto's limit once, after building its attributes."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    original = Item.__init__
    if getattr(original, "_stocksage_fast", False):
        return
    limit = 405000  # moto's LimitedSizeDict limit (between the measured 409 and 410 KB)

    @functools.wraps(original)
    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = LimitedSizeDict()
        size = 0
        for key, value in attrs.items():
            typed = DynamoType(value)
            size += bytesize(key) + typed.size()  # the running sum moto recomputes each time
            if size > limit:
                raise ItemSizeTooLarge
            dict.__setitem__(self.attrs, key, typed)

    __init__._stocksage_fast = True  # type: ignore[attr-defined]
    Item.__init__ = __init__  # type: ignore[method-assign]  # patching moto on purpose


class ShapeCompiler:
    """Parse functions of botocore shapes, equal to moto's ``BaseJSONParser`` walk.

    One compiler per parser configuration (blob parser, timestamp parser, map type); the
    functions are cached by shape name, which is unique within a service model, and
    recursive shapes (``AttributeValue`` holds maps of itself) are linked lazily.
    """

    def __init__(self, blob: Parse, timestamp: Parse, map_type: type, undefined: object):
        self._blob = blob
        self._timestamp = timestamp
        self._map_type = map_type
        self._undefined = undefined
        self._compiled: dict[str, Parse] = {}

    def compile(self, shape: Any) -> Parse:
        """The parse function of ``shape``; ``_identity`` for values moto returns as is."""
        name = shape.name
        found = self._compiled.get(name)
        if found is not None:
            return found
        late: list[Parse] = []

        def recursive(node: Any) -> Any:  # what a shape that contains itself calls, for now
            return late[0](node)

        self._compiled[name] = recursive
        built = self._build(shape)
        late.append(built)
        self._compiled[name] = built
        return built

    def _build(self, shape: Any) -> Parse:
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape)
        if kind == "list":
            return self._list(shape)
        if kind == "map":
            return self._map(shape)
        if kind == "blob":
            return self._blob
        if kind == "timestamp":
            return self._timestamp
        if kind in ("float", "double"):
            return self._number(float)
        if kind in ("integer", "byte", "short", "long"):
            return self._number(int)
        return _identity

    def _number(self, convert: Callable[[Any], Any]) -> Parse:
        undefined = self._undefined

        def parse(value: Any) -> Any:
            return value if value is undefined else convert(value)

        return parse

    def _list(self, shape: Any) -> Parse:
        member = self.compile(shape.member)
        if member is _identity:
            return list  # moto's loop over any iterable, as one call
        return lambda node: [member(item) for item in node]

    def _map(self, shape: Any) -> Parse:
        key, value, map_type = self.compile(shape.key), self.compile(shape.value), self._map_type

        def parse(node: Any) -> Any:
            parsed = map_type()
            for k, v in node.items():
                parsed[key(k)] = value(v)
            return parsed

        return parse

    def _structure(self, shape: Any) -> Parse:
        if shape.is_document_type:
            return _identity
        map_type = self._map_type
        members = [
            (member.serialization.get("name", name), name, self.compile(member))
            for name, member in shape.members.items()
        ]

        by_json_name = {json_name: (name, member) for json_name, name, member in members}

        def parse(value: Any) -> Any:
            if value is None:
                return None
            parsed = map_type()
            if type(value) is dict and len(value) == 1:  # an AttributeValue: one member set
                ((json_name, raw),) = value.items()
                found = by_json_name.get(json_name)
                if found is not None and raw is not None:
                    name, member = found
                    parsed[name] = raw if member is _identity else member(raw)
                return parsed
            for json_name, name, member in members:
                raw = value.get(json_name)
                if raw is not None:
                    parsed[name] = raw if member is _identity else member(raw)
            return parsed

        return parse


def _identity(value: Any) -> Any:
    return value


def dynamodb_compiled_request_parser() -> None:
    """Parse the JSON bodies of ``FAST_PARSE_SERVICES`` with compiled shape walks."""
    from moto.core.parse import UNDEFINED, JSONParser

    original = JSONParser._parse_json_body
    if getattr(original, "_stocksage_fast", False):
        return
    compilers: dict[tuple[Any, ...], ShapeCompiler] = {}

    @functools.wraps(original)
    def _parse_json_body(self: Any, raw_body: Any, shape: Any) -> Any:
        service = self.operation_model.service_model.service_name
        if service not in FAST_PARSE_SERVICES:
            return original(self, raw_body, shape)
        config = (service, self._blob_parser, self._timestamp_parser, self.MAP_TYPE)
        compiler = compilers.get(config)
        if compiler is None:
            compiler = compilers[config] = ShapeCompiler(
                self._blob_parser, self._timestamp_parser, self.MAP_TYPE, UNDEFINED)
        return compiler.compile(shape)(self._parse_body_as_json(raw_body))

    _parse_json_body._stocksage_fast = True  # type: ignore[attr-defined]
    JSONParser._parse_json_body = _parse_json_body  # type: ignore[method-assign]  # on purpose


def dynamodb_condition_lexer_cache() -> None:
    """Lex each distinct condition expression once (tokens cached by its text)."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    original = ConditionExpressionParser._lex_condition_expression
    if getattr(original, "_stocksage_fast", False):
        return
    node = ConditionExpressionParser.Node

    @functools.lru_cache(maxsize=LEXER_CACHE_SIZE)
    def tokens(expression: str) -> tuple[Any, ...]:
        probe = object.__new__(ConditionExpressionParser)  # the lexer reads only the text
        probe.condition_expression = expression
        return tuple(original(probe))

    @functools.wraps(original)
    def _lex_condition_expression(self: Any) -> deque[Any]:
        # Fresh nodes with their own (empty) children lists, as the lexer makes them.
        return deque(node(n.nonterminal, n.kind, n.text, n.value, [])
                     for n in tokens(self.condition_expression))

    _lex_condition_expression._stocksage_fast = True  # type: ignore[attr-defined]
    ConditionExpressionParser._lex_condition_expression = (  # type: ignore[method-assign]
        _lex_condition_expression
    )
