"""FrozenMap: an immutable mapping whose `set` and `delete` copy only one path of a hash trie."""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

_BITS = 5
_WIDTH = 1 << _BITS
_MASK = _WIDTH - 1
_LEAF_MAX = 64  # a leaf's copy is one C call: wide leaves keep paths short
_MAX_SHIFT = 60  # past the hash's 64 bits, keys collide for good: leaves just grow
_HASH_MASK = (1 << 64) - 1
_new = object.__new__

# A node is None (empty), a dict (a leaf, never mutated once built) or a tuple of
# _WIDTH nodes (a branch). Folding a long log changes one entry per event, so copying
# a path of small nodes instead of the whole mapping keeps every step cheap.
_Node = dict[Any, Any] | tuple[Any, ...] | None


def _hash(key: object) -> int:
    return hash(key) & _HASH_MASK


def _split(leaf: dict[Any, Any], shift: int) -> tuple[Any, ...]:
    children: list[dict[Any, Any] | None] = [None] * _WIDTH
    for k, v in leaf.items():
        i = (_hash(k) >> shift) & _MASK
        child = children[i]
        if child is None:
            child = children[i] = {}
        child[k] = v
    return tuple(children)


def _set(root: _Node, key: object, value: object, h: int, shift: int) -> tuple[_Node, bool]:
    """The node (at depth `shift`) with `key` set, and whether the key is new: the path
    to its leaf copied."""
    path: list[tuple[tuple[Any, ...], int]] = []
    node: Any = root
    while type(node) is tuple:
        i = (h >> shift) & _MASK
        path.append((node, i))
        node = node[i]
        shift += _BITS
    new: _Node
    if node is None:
        new, added = {key: value}, True
    elif key in node:
        if node[key] is value:
            return root, False
        leaf = node.copy()
        leaf[key] = value
        new, added = leaf, False
    elif len(node) < _LEAF_MAX or shift >= _MAX_SHIFT:
        leaf = node.copy()
        leaf[key] = value
        new, added = leaf, True
    else:
        new, added = _set(_split(node, shift), key, value, h, shift)[0], True
    for branch, i in reversed(path):
        children = list(branch)
        children[i] = new
        new = tuple(children)
    return new, added


def _merged(node: _Node, items: list[tuple[Any, Any, int]], shift: int) -> tuple[_Node, int]:
    """The node with every (key, value, hash) of `items` set, each node on their paths
    copied once, and how many keys are new."""
    if isinstance(node, tuple):
        groups: dict[int, list[tuple[Any, Any, int]]] = {}
        for item in items:
            i = (item[2] >> shift) & _MASK
            group = groups.get(i)
            if group is None:
                groups[i] = [item]
            else:
                group.append(item)
        children = list(node)
        added = 0
        for i, group in groups.items():
            children[i], more = _merged(children[i], group, shift + _BITS)
            added += more
        return tuple(children), added
    leaf: dict[Any, Any] = {} if node is None else node.copy()
    before = len(leaf)
    for key, value, _ in items:
        leaf[key] = value
    added = len(leaf) - before
    if len(leaf) <= _LEAF_MAX or shift >= _MAX_SHIFT:
        return leaf, added
    return _merged((None,) * _WIDTH, [(k, v, _hash(k)) for k, v in leaf.items()], shift)[0], added


def _delete(node: _Node, key: object, h: int, shift: int) -> _Node:
    if node is None:
        raise KeyError(key)
    if type(node) is dict:
        if key not in node:
            raise KeyError(key)
        leaf = dict(node)
        del leaf[key]
        return leaf or None
    assert type(node) is tuple
    i = (h >> shift) & _MASK
    child = _delete(node[i], key, h, shift + _BITS)
    branch = (*node[:i], child, *node[i + 1 :])
    return None if all(c is None for c in branch) else branch


def _walk(node: _Node) -> Iterator[tuple[Any, Any]]:
    if node is None:
        return
    if type(node) is dict:
        yield from node.items()
        return
    assert type(node) is tuple
    for child in node:
        yield from _walk(child)


class FrozenMap(Mapping[K, V], Generic[K, V]):
    """An immutable mapping; iteration order is unspecified, so sort where order matters."""

    __slots__ = ("_len", "_root")

    _root: _Node
    _len: int

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        root: _Node = None
        size = 0
        pairs = items.items() if isinstance(items, Mapping) else items
        for k, v in pairs:
            root, added = _set(root, k, v, _hash(k), 0)
            size += added
        self._root = root
        self._len = size

    @classmethod
    def _make(cls, root: _Node, size: int) -> FrozenMap[K, V]:
        new: FrozenMap[K, V] = _new(cls)
        new._root = root
        new._len = size
        return new

    def __getitem__(self, key: K) -> V:
        node: Any = self._root
        h = hash(key) & _HASH_MASK
        shift = 0
        while type(node) is tuple:
            node = node[(h >> shift) & _MASK]
            shift += _BITS
        if node is None:
            raise KeyError(key)
        value: V = node[key]
        return value

    @overload
    def get(self, key: K, /) -> V | None: ...

    @overload
    def get(self, key: K, /, default: V | T) -> V | T: ...

    def get(self, key: K, /, default: Any = None) -> Any:
        node: Any = self._root
        h = hash(key) & _HASH_MASK
        shift = 0
        while type(node) is tuple:
            node = node[(h >> shift) & _MASK]
            shift += _BITS
        return default if node is None else node.get(key, default)

    def __contains__(self, key: object) -> bool:
        node: Any = self._root
        h = hash(key) & _HASH_MASK
        shift = 0
        while type(node) is tuple:
            node = node[(h >> shift) & _MASK]
            shift += _BITS
        return node is not None and key in node

    def __iter__(self) -> Iterator[K]:
        root = self._root
        if type(root) is dict:
            return iter(root)
        return (k for k, _ in _walk(root))

    def values(self) -> ValuesView[V]:
        root = self._root
        if type(root) is dict:  # a small map is one leaf: its own (read-only) view
            values: ValuesView[V] = root.values()
            return values
        return _Values(self)

    def items(self) -> ItemsView[K, V]:
        root = self._root
        if type(root) is dict:
            items: ItemsView[K, V] = root.items()
            return items
        return _Items(self)

    def __len__(self) -> int:
        return self._len

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap) and other._root is self._root:
            return True
        if not isinstance(other, Mapping) or len(other) != self._len:
            return False
        return dict(self.items()) == dict(other.items())

    def __hash__(self) -> int:
        """Hashable when its keys and values are, like a tuple."""
        return hash(frozenset(self.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({dict(self.items())!r})"

    def set(self, key: K, value: V) -> FrozenMap[K, V]:
        """A copy with `key` mapped to `value`."""
        root: Any = self._root
        if type(root) is dict and (key in root or len(root) < _LEAF_MAX):
            # a small map is one leaf: copy it (the common case of the folds' small maps)
            if key in root:
                if root[key] is value:
                    return self
                added = False
            else:
                added = True
            root = root.copy()
            root[key] = value
        elif type(root) is tuple:
            # up to two branches over leaves (some 30,000 keys): the path copied inline
            h = hash(key) & _HASH_MASK
            i = h & _MASK
            node = root[i]
            j = -1
            if type(node) is tuple:
                j = (h >> _BITS) & _MASK
                leaf = node[j]
            else:
                leaf = node
            if leaf is None:
                leaf, added = {key: value}, True
            elif type(leaf) is dict and (key in leaf or len(leaf) < _LEAF_MAX):
                if key in leaf:
                    if leaf[key] is value:
                        return self
                    added = False
                else:
                    added = True
                leaf = leaf.copy()
                leaf[key] = value
            else:
                root, added = _set(root, key, value, h, 0)
                return self if root is self._root else self._make(root, self._len + added)
            if j >= 0:
                children = list(node)
                children[j] = leaf
                leaf = tuple(children)
            children = list(root)
            children[i] = leaf
            root = tuple(children)
        else:
            root, added = _set(root, key, value, hash(key) & _HASH_MASK, 0)
        new: FrozenMap[K, V] = _new(type(self))
        new._root = root
        new._len = self._len + added
        return new

    def updated(self, changes: Mapping[K, V]) -> FrozenMap[K, V]:
        """A copy with every key of `changes` mapped to its value: `set` for each, with
        each node of the trie copied at most once."""
        if len(changes) < 2:
            new = self
            for key, value in changes.items():
                new = new.set(key, value)
            return new
        items = [(k, v, hash(k) & _HASH_MASK) for k, v in changes.items()]
        root, added = _merged(self._root, items, 0)
        return self._make(root, self._len + added)

    def delete(self, key: K) -> FrozenMap[K, V]:
        """A copy without `key`; the same map if it had no such key."""
        try:
            root = _delete(self._root, key, _hash(key), 0)
        except KeyError:
            return self
        return self._make(root, self._len - 1)


class _Values(ValuesView[V]):
    """`values()` walking the trie, not looking each key up again."""

    _mapping: FrozenMap[Any, V]

    def __iter__(self) -> Iterator[V]:
        root = self._mapping._root
        if type(root) is dict:
            return iter(root.values())
        return (v for _, v in _walk(root))


class _Items(ItemsView[K, V]):
    """`items()` walking the trie, not looking each key up again."""

    _mapping: FrozenMap[K, V]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        root = self._mapping._root
        if type(root) is dict:
            return iter(root.items())
        return _walk(root)
