"""The vendored part of X's OpenAPI document is whole: nothing it refers to is left out.

tests/test_sandbox_openapi.py validates against tests/data/x_api_openapi.json; if a
component were missing, a $ref would fail to resolve (or a problem type would go
unchecked) only when a test happened to reach it. These checks walk the whole file.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from dmtool.x.sandbox.server import Server
from tests.data.vendor_x_api import PROVENANCE_KEY, extract, main

OPENAPI = Path(__file__).resolve().parent / "data" / "x_api_openapi.json"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return loaded


def all_references(node: Any) -> list[str]:
    """Every $ref and discriminator mapping target (walked here, not with the script's own helper)."""
    if isinstance(node, list):
        return [ref for item in node for ref in all_references(item)]
    if not isinstance(node, dict):
        return []
    found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    found += list(node.get("discriminator", {}).get("mapping", {}).values())
    return found + [ref for value in node.values() for ref in all_references(value)]


def pointer(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_reference_resolves_inside_the_extract(doc: dict[str, Any]) -> None:
    refs = set(all_references(doc))
    assert len(refs) > 50  # the walk really ran over the schemas
    unresolved = []
    for ref in sorted(refs):
        try:
            pointer(doc, ref)
        except (KeyError, TypeError):
            unresolved.append(ref)
    assert unresolved == []


def test_security_schemes_and_tags_named_by_operations_are_there(doc: dict[str, Any]) -> None:
    ops = [op for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)]
    schemes = {name for op in ops for req in op.get("security", []) for name in req}
    assert schemes <= set(doc["components"]["securitySchemes"])
    assert {tag for op in ops for tag in op.get("tags", [])} <= {t["name"] for t in doc["tags"]}


def test_the_extract_holds_exactly_what_its_paths_reach(doc: dict[str, Any]) -> None:
    """Cutting the extract again changes nothing: no component is missing and none is spare."""
    body = {k: v for k, v in doc.items() if k != PROVENANCE_KEY}
    assert extract(body) == body
    stamp = doc[PROVENANCE_KEY]
    assert stamp["source_version"] == doc["info"]["version"]
    assert re.fullmatch(r"[0-9a-f]{64}", stamp["source_sha256"])


def test_every_sandbox_route_is_a_documented_path(doc: dict[str, Any]) -> None:
    """The sandbox serves nothing the extract cannot check, and the extract keeps no unserved path."""
    served: set[tuple[str, str]] = set()
    for method, pattern, _name in Server.ROUTES:
        matches = [
            template
            for template, item in doc["paths"].items()
            if method.lower() in item and pattern.match(re.sub(r"\{[^}]+\}", "123", template))
        ]
        assert len(matches) == 1, f"{method} {pattern.pattern}: {matches}"
        served.add((method.lower(), matches[0]))
    documented = {(m, t) for t, item in doc["paths"].items() for m in item if m in ("get", "post")}
    assert documented == served


def test_the_script_refuses_a_dangling_reference(
    doc: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = copy.deepcopy(doc)
    del broken["components"]["schemas"]["DmEvent"]
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(broken))
    assert main([str(source), "-o", str(tmp_path / "out.json")]) == 1
    assert "DmEvent" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_the_script_refuses_a_dispatching_discriminator(doc: dict[str, Any]) -> None:
    # Unmapped values would be looked up as #/components/schemas/<value>: unknowable from the cut.
    broken = copy.deepcopy(doc)
    broken["components"]["schemas"]["Problem"]["oneOf"] = [{"$ref": "#/components/schemas/GenericProblem"}]
    with pytest.raises(ValueError, match="Problem"):
        extract(broken)


def test_the_script_writes_a_stamped_extract(doc: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert main([str(OPENAPI), "-o", str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    assert {k: v for k, v in written.items() if k != PROVENANCE_KEY} == {
        k: v for k, v in doc.items() if k != PROVENANCE_KEY
    }
    assert written[PROVENANCE_KEY]["components"] == {k: len(v) for k, v in doc["components"].items()}
