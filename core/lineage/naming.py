"""Dataset names: one rule for the CLI, every integration and the in-job ``report``.

A dataset is written ``NAMESPACE:NAME`` (``warehouse:sales.orders``; the name may contain colons)
or as a URI split as the OpenLineage naming spec does
(https://openlineage.io/docs/spec/naming): ``SCHEME://AUTHORITY/PATH`` is namespace
``SCHEME://AUTHORITY`` and name ``PATH`` (``s3://bucket/key``, ``postgres://db:5432/shop.t``),
and ``file:///data/x.csv`` is namespace ``file``, name ``/data/x.csv``. Anything else is a
``DatasetNameError`` saying what to write instead. No third-party import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

__all__ = ["Dataset", "DatasetNameError", "parse_dataset", "parse_datasets"]

#: What to write, appended to every error.
EXAMPLE = ("write NAMESPACE:NAME (e.g. warehouse:sales.orders) or a URI "
           "(e.g. s3://bucket/path/file.csv)")
# Spaces, control characters (C0, DEL, C1), bidi overrides/isolates and lone surrogates: a name
# holding one would be shown wrongly or not at all wherever lineage is read.
_UNPRINTABLE = re.compile("[\\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


@dataclass(frozen=True)
class Dataset:
    """An OpenLineage dataset: ``namespace`` (e.g. ``s3://bucket``) and ``name``."""

    namespace: str
    name: str


class DatasetNameError(ConfigurationError):
    """A dataset name that is neither ``NAMESPACE:NAME`` nor a URI with a location and a path;
    the message quotes it and says what to write instead."""


def parse_dataset(value: str) -> Dataset:
    """One dataset name (``NAMESPACE:NAME`` or a URI) as a ``Dataset``, by OpenLineage's naming
    spec. Raises ``DatasetNameError`` saying what to write instead."""
    text = value.strip()
    if not text or _UNPRINTABLE.search(text):
        raise DatasetNameError(f"{value!r} is not a dataset name (no spaces or control "
                               f"characters): {EXAMPLE}")  # repr shows them escaped
    scheme, sep, rest = text.partition("://")
    if sep:
        if not _SCHEME.fullmatch(scheme):
            raise DatasetNameError(f"{text!r}: {scheme!r} is not a URI scheme; {EXAMPLE}")
        authority, _, path = rest.partition("/")
        if scheme == "file" and not authority:
            if not path:
                raise DatasetNameError(f"{text!r} names no file; {EXAMPLE}")
            return Dataset("file", "/" + path)
        if not authority or not path:
            raise DatasetNameError(f"{text!r} needs both a location and a path after "
                                   f"{scheme}:// ({scheme}://LOCATION/PATH); {EXAMPLE}")
        return Dataset(f"{scheme}://{authority}", path)
    namespace, sep, name = text.partition(":")
    if not sep:
        raise DatasetNameError(f"{text!r} has no namespace: {EXAMPLE}")
    if not namespace or not name:
        raise DatasetNameError(f"{text!r} needs both a namespace and a name: {EXAMPLE}")
    return Dataset(namespace, name)


def parse_datasets(items: Iterable[Any] | None) -> tuple[Dataset, ...]:
    """Dataset names (``parse_dataset``), ``Dataset`` objects or ``{"namespace", "name"}`` dicts
    → Datasets; one string is one name. Anything else, or a dict without both keys, is a
    ``DatasetNameError``."""
    if isinstance(items, str):  # not its characters
        items = (items,)
    out: list[Dataset] = []
    for item in items or ():
        if isinstance(item, Dataset):
            out.append(item)
        elif isinstance(item, str):
            out.append(parse_dataset(item))
        elif isinstance(item, Mapping):
            namespace, name = item.get("namespace"), item.get("name")
            if not namespace or not name:
                raise DatasetNameError(f"Dataset {dict(item)!r} needs both 'namespace' and "
                                       f"'name'; or {EXAMPLE}")
            out.append(Dataset(str(namespace), str(name)))
        else:
            raise DatasetNameError(f"Unsupported dataset {item!r} ({type(item).__name__}): "
                                   f"{EXAMPLE}, or pass a Dataset")
    return tuple(out)
