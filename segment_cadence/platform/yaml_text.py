"""YAML documents parsed with libyaml where PyYAML was built with it.

A refresh reads the dictionary, the thresholds, the governance settings, the sources and
every stored definition version: about fifty documents. PyYAML's pure-Python safe loader
took about 4 ms a document (0.4 s of a refresh); its libyaml binding builds the same values
ten times faster, with the same error classes and line marks for a user's mistake.

libyaml also reads nesting far deeper than the code that walks a document can follow (the
pure-Python parser ran out of stack first): a document nested deeper than MAX_DEPTH is
refused here, as a YAMLError, which every caller already turns into one line.
"""

from __future__ import annotations

from typing import Any

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Far beyond any configuration file's (the dictionary's rules are a few levels deep).
MAX_DEPTH = 100


class NestedTooDeeply(yaml.YAMLError):
    """A document nested deeper than MAX_DEPTH."""


def depth(document: Any) -> int:
    """How many lists and mappings deep `document` goes (0 for a scalar), walked without
    recursion."""
    deepest, stack = 0, [(document, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children = [*node.keys(), *node.values()]
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def load(text: str | bytes) -> Any:
    """The document in `text`, as yaml.safe_load reads it; NestedTooDeeply beyond MAX_DEPTH."""
    document = yaml.load(text, Loader=SafeLoader)
    if depth(document) > MAX_DEPTH:
        raise NestedTooDeeply(f"nested too deeply to read (more than {MAX_DEPTH} levels)")
    return document
