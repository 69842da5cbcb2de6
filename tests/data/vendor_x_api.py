"""Cut X's OpenAPI document down to the part dmtool's tests validate against.

    python tests/data/vendor_x_api.py PATH/TO/openapi.json

writes tests/data/x_api_openapi.json (or `-o FILE`). It keeps `openapi`, `info`
and `servers`, the path items in PATHS, the tags and security schemes their
operations name, and every component their references reach, transitively.
Discriminator mappings count as references: the tests follow them. Components are
copied unchanged, so each schema validates exactly as strictly as in the full
document. Anything the cut could not reproduce faithfully (a reference outside
the document, a discriminator that may map values implicitly) stops the script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The endpoints dmtool calls and the sandbox serves (src/dmtool/x/sandbox.py ROUTES).
PATHS = (
    "/2/users/me",
    "/2/users/by/username/{username}",
    "/2/users",
    "/2/dm_events",
    "/2/dm_conversations/with/{participant_id}/dm_events",
    "/2/dm_conversations/with/{participant_id}/messages",
    "/2/users/{id}/mentions",
    "/2/users/{id}/tweets",
)
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PROVENANCE_KEY = "x-dmtool-extract"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "x_api_openapi.json"


def references(node: Any) -> Iterator[str]:
    """Every `$ref` and discriminator mapping target under `node`."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        discriminator = node.get("discriminator")
        if isinstance(discriminator, dict):
            yield from (v for v in discriminator.get("mapping", {}).values() if isinstance(v, str))
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def component_of(ref: str) -> tuple[str, str]:
    """`#/components/KIND/NAME[/...]` -> (KIND, NAME); a pointer inside a component keeps all of it."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ref.removeprefix("#/").split("/")]
    if not ref.startswith("#/") or len(parts) < 3 or parts[0] != "components":
        raise ValueError(f"cannot vendor a reference outside the document's components: {ref}")
    return parts[1], parts[2]


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """The node a local JSON pointer names (KeyError when it names nothing)."""
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def operations(path_item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for method in HTTP_METHODS:
        if method in path_item:
            yield path_item[method]


def reachable(doc: dict[str, Any], roots: list[Any]) -> dict[str, set[str]]:
    """Names of the components reachable from `roots`, by kind."""
    found: dict[str, set[str]] = {}
    pending = [ref for root in roots for ref in references(root)]
    while pending:
        ref = pending.pop()
        kind, name = component_of(ref)
        resolve(doc, ref)  # a dangling reference fails here, not in a test run later
        if name in found.setdefault(kind, set()):
            continue
        found[kind].add(name)
        component = doc["components"][kind][name]
        if kind == "schemas":
            _refuse_implicit_discriminator(name, component)
        pending.extend(references(component))
    return found


def _refuse_implicit_discriminator(name: str, schema: Any) -> None:
    # A discriminator beside oneOf/anyOf/allOf makes validators look up unmapped values
    # as #/components/schemas/<value>, which could reach a component this cut leaves out.
    if (
        isinstance(schema, dict)
        and "discriminator" in schema
        and any(k in schema for k in ("oneOf", "anyOf", "allOf"))
    ):
        raise ValueError(f"schema {name} dispatches on a discriminator: its implicit targets are unknown")


def extract(doc: dict[str, Any], paths: tuple[str, ...] = PATHS) -> dict[str, Any]:
    """The self-contained part of `doc` that `paths` need (provenance key not included)."""
    missing = [p for p in paths if p not in doc["paths"]]
    if missing:
        raise ValueError(f"not in the document: {', '.join(missing)}")
    path_items = {p: item for p, item in doc["paths"].items() if p in paths}
    ops = [op for item in path_items.values() for op in operations(item)]
    found = reachable(doc, list(path_items.values()))

    schemes = {name for op in ops for req in op.get("security", []) for name in req}
    schemes |= {name for req in doc.get("security", []) for name in req}
    if schemes:
        found.setdefault("securitySchemes", set()).update(schemes)
    tag_names = {tag for op in ops for tag in op.get("tags", [])}

    out: dict[str, Any] = {"openapi": doc["openapi"], "info": doc["info"]}
    for key in ("servers", "security"):
        if key in doc:
            out[key] = doc[key]
    tags = [t for t in doc.get("tags", []) if t.get("name") in tag_names]
    if tags:
        out["tags"] = tags
    out["paths"] = path_items
    out["components"] = {
        kind: {name: body for name, body in members.items() if name in found[kind]}
        for kind, members in doc["components"].items()
        if kind in found
    }
    return out


def render(cut: dict[str, Any], source_bytes: bytes) -> str:
    stamped = {
        **cut,
        PROVENANCE_KEY: {
            "generator": "tests/data/vendor_x_api.py",
            "source_version": cut["info"].get("version"),
            "source_sha256": hashlib.sha256(source_bytes).hexdigest(),
            "paths": len(cut["paths"]),
            "components": {kind: len(members) for kind, members in cut["components"].items()},
        },
    }
    return json.dumps(stamped, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source", type=Path, help="X's full OpenAPI document (openapi.json)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    raw = args.source.read_bytes()
    try:
        cut = extract(json.loads(raw))
    except (ValueError, KeyError) as exc:
        print(f"vendor_x_api: {exc}", file=sys.stderr)
        return 1
    args.output.write_text(render(cut, raw), encoding="utf-8")
    counts = ", ".join(f"{len(m)} {kind}" for kind, m in cut["components"].items())
    print(f"{args.output}: {len(cut['paths'])} paths, {counts} (X API {cut['info'].get('version')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
