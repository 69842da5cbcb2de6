"""Text that is not what it seems (issue 11 point 9): what a person types goes
through one check (textnorm.typed) at every entry point; X's names are
cleaned, never refused; templates never reach str.format and any brace they
leave is L001; handles follow X's rule."""

from __future__ import annotations

import json
import string
import unicodedata
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as hs

from dmtool.errors import InputError
from dmtool.lint import LintContext, lint
from dmtool.models import Contact, clean_handle
from dmtool.services.drafting import check_template, fill
from dmtool.textnorm import clean_display, cut, is_blank, line_ends, typed
from tests.test_drafts import add_talking_contact, draft_json

REFUSED = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85\x9b\ud800\udcff"  # C0, DEL, C1, surrogates
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u3164\u2800\ufe0f \t\n\u3000"


def _bad(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t\r"


# --- textnorm.typed: properties over all text ------------------------------------------

TEXT = hs.text(alphabet=hs.characters(codec=None, exclude_categories=()), max_size=60) | \
    hs.text(alphabet=hs.sampled_from("ab {}\r\n\t" + REFUSED + INVISIBLE), max_size=30)


@settings(max_examples=400)
@given(TEXT, hs.booleans())
@example("Hi\x00there", False)
@example("\u200b\u200b\u200b", False)
@example("a\r\nb\rc", False)
def test_typed_refuses_exactly_the_control_characters(text: str, one_line: bool) -> None:
    ends = line_ends(text)
    refused = any(_bad(ch) for ch in ends) or (one_line and "\n" in ends)
    try:
        out = typed(text, "the text", one_line=one_line)
    except InputError as e:
        assert refused, (text, e.message)
        assert len(e.message) < 120  # names the character's code point, never echoes the text
        return
    assert not refused, text
    assert "\r" not in out and not any(_bad(ch) for ch in out)
    assert out == out.strip()
    assert (out == "") == is_blank(ends)  # shows nothing -> empty, for every caller
    assert typed(out, "the text", one_line=one_line) == out  # stable: stored text passes again


@given(hs.text(alphabet=hs.sampled_from(INVISIBLE), max_size=40))
def test_only_invisible_characters_is_blank(text: str) -> None:
    assert is_blank(text)
    assert typed(text, "x") == ""
    assert [f.code for f in lint(text, REPLY)] == ["L002"]


@given(hs.text(alphabet=hs.sampled_from(INVISIBLE), max_size=10),
       hs.characters(categories=("L", "N", "S", "P")), hs.text(alphabet=hs.sampled_from(INVISIBLE),
                                                              max_size=10))
def test_one_visible_character_is_not_blank(before: str, ch: str, after: str) -> None:
    assume(ch not in INVISIBLE)
    assert not is_blank(before + ch + after)


def test_the_length_limit_counts_what_is_kept() -> None:
    assert typed("  " + "x" * 100 + "\n", "the name", max_length=100) == "x" * 100
    with pytest.raises(InputError, match="too long: 101 characters, at most 100"):
        typed("x" * 101, "the name", max_length=100)


@settings(max_examples=200)
@given(TEXT, hs.integers(min_value=1, max_value=200))
def test_clean_display_never_refuses_and_leaves_nothing_to_refuse(text: str, limit: int) -> None:
    out = clean_display(text, limit)
    if out is None:  # nothing visible (within the limit)
        assert limit < len(text) or is_blank("".join(ch for ch in text if not _bad(ch)))
        return
    assert len(out) <= limit
    assert typed(out, "a name", one_line=True) == out  # nothing a typed name could not hold
    assert clean_display(out, limit) == out


@given(hs.text(max_size=300))
def test_cut_bounds_any_echo(text: str) -> None:
    assert len(cut(text)) <= 4 * 40 + 40


# --- lint: braces ------------------------------------------------------------------------

REPLY = LintContext(first_contact=False, name="Ann Lee", handle="ann")
FROM_TEMPLATE = LintContext(first_contact=False, name="Ann Lee", handle="ann", template=True)


def l001(text: str, ctx: LintContext) -> bool:
    return "L001" in {f.code for f in lint(text, ctx)}


@pytest.mark.parametrize("text", ["Hi {name[0]}, thanks", "Hi {}, thanks",
                                  "Hi {name:>99999999999}, thanks", "Hi {name, thanks",
                                  "Hi name}, thanks", "Hi {{name}}", "See {0} soon",
                                  "Hi ｛ｎａｍｅ", "Hi {first name}"])
def test_any_brace_in_a_templates_output_is_l001(text: str) -> None:
    assert l001(text, FROM_TEMPLATE)


@pytest.mark.parametrize("text", ["Great talk (^_^){", "ok }:-)", "use `if (x) { return 1; }` there",
                                  "a dict like { 'a': 1 }", "Hi {first name}"])
def test_typed_text_keeps_kaomoji_and_code(text: str) -> None:
    assert not l001(text, REPLY)
    assert l001(text, FROM_TEMPLATE)


@pytest.mark.parametrize("text", ["Hi {name}", "Hi { first_name }", "Hi {名前}", "Hi {{event}}"])
def test_typed_text_flags_an_identifier_in_braces(text: str) -> None:
    assert l001(text, REPLY)


@settings(max_examples=300)
@given(hs.text(alphabet=hs.sampled_from("ab _{}[]:>0!.\n ｛｝"), max_size=40))
def test_template_mode_flags_every_brace_and_only_adds_findings(text: str) -> None:
    normal = unicodedata.normalize("NFKC", text)
    template = {f.code for f in lint(text, FROM_TEMPLATE)}
    typed_ = {f.code for f in lint(text, REPLY)}
    assert ("L001" in template) >= ("{" in normal or "}" in normal)
    assert typed_ <= template


ANN = Contact(id=1, user_id="1", handle="ann", name="Ann Lee", created_at="", updated_at="")


@settings(max_examples=300)
@given(hs.lists(hs.sampled_from(list("{}[]:>!0. ") + ["name", "first_name", "handle", "event",
                                                      "x" * 3]), max_size=25).map("".join),
       hs.dictionaries(hs.sampled_from(["event", "x", "0"]), hs.text(string.ascii_letters,
                                                                        max_size=5), max_size=2))
@example("{name:>99999999999}", {})
@example("{name[0]}{}{", {})
def test_fill_never_formats(template: str, variables: dict[str, str]) -> None:
    """fill only replaces `{identifier}`: whatever else is in braces stays as
    written, nothing is indexed, padded or raised, and what a template leaves
    is flagged."""
    out = fill(template, ANN, variables)
    assert len(out) <= len(template) + 20 * template.count("{")  # no padding to 99999999999
    for leftover in ("{name[0]}", "{}", "{name:"):
        if leftover in template:
            assert leftover in out
    if "{" in out or "}" in out:
        assert l001(out, FROM_TEMPLATE)


def test_fill_fills_variables_and_nothing_else() -> None:
    out = fill("Hi {first_name} ({ name }), @{handle}: {event} {{event}} {name[0]} {}", ANN,
               {"event": "the meetup"})
    assert out == "Hi Ann (Ann Lee), @ann: the meetup {{event}} {name[0]} {}"


@pytest.mark.parametrize(("text", "why"), [
    ("Hi {name[0]}", "'{name[0]}'"), ("Hi {}", "'{}'"), ("Hi {name:>99999999999}", "'{name:>9"),
    ("Hi {name", "an unmatched '{'"), ("Hi {{name}}", "'{{name}}'"), ("Hi\x00there", "U+0000"),
])
def test_a_template_that_could_never_be_filled_is_refused(text: str, why: str) -> None:
    with pytest.raises(InputError) as e:
        check_template(text)
    assert why in e.value.message


def test_a_template_of_variables_passes() -> None:
    assert check_template("Hi {first_name}, see you at {event} (^_^)\r\n") == \
        "Hi {first_name}, see you at {event} (^_^)"


# --- handles -------------------------------------------------------------------------------


@settings(max_examples=300)
@given(hs.text(alphabet=hs.sampled_from(string.ascii_letters + string.digits + "_@ -é١\n"),
               max_size=25))
@example("a" * 15)
@example("a" * 16)
@example("user_1500000000000000011")
@example("abc\n")
@example("١٢٣")
def test_handles_follow_xs_rule(handle: str) -> None:
    h = handle.strip().removeprefix("@")
    valid = (1 <= len(h) <= 15 and all(c in string.ascii_letters + string.digits + "_" for c in h)) \
        or (h.startswith("user_") and h[5:].isascii() and h[5:].isdigit() and len(h) <= 30)
    try:
        assert clean_handle(handle) == h and valid
    except InputError as e:
        assert not valid
        assert len(e.message) < 120


def test_an_invalid_huge_handle_is_cut_in_the_error(cli) -> None:
    huge = "a" * 100_000
    for args in (["contacts", "add", huge], ["contacts", "show", huge], ["check", huge],
                 ["draft", huge, "hello"]):
        r = cli(*args)
        assert r.exit_code == 1, (args[:2], r.exit_code)
        assert "not an X handle" in r.stderr and len(r.stderr) < 400, args[:2]
    for args in (["templates", "add", huge, "hi"], ["templates", "show", huge],
                 ["contacts", "add", "ann", "--tag", huge], ["contacts", "add", "ann", "--name", huge]):
        r = cli(*args)
        assert r.exit_code == 1 and len(r.stderr) < 400, (args[:2], r.exit_code, len(r.stderr))


def test_a_16_character_handle_is_refused_but_placeholders_and_old_handles_stay(cli, db) -> None:
    assert cli("contacts", "add", "a" * 15).exit_code == 0
    r = cli("contacts", "add", "a" * 16)
    assert r.exit_code == 1 and "1 to 15" in r.stderr
    assert cli("contacts", "add", "user_1500000000000000011").exit_code == 0
    # A contact 0.1.0 stored with a longer handle is still reachable to show and forget.
    db("UPDATE contacts SET handle = ? WHERE handle = ?", ("b" * 20, "a" * 15))
    assert cli("contacts", "show", "b" * 20, "--json").json()["handle"] == "b" * 20
    assert cli("contacts", "forget", "b" * 20, "--yes").exit_code == 0


# --- every entry point refuses the same way -------------------------------------------------

TEMPLATE_OK = "Hi {first_name}, thanks for your message."


def _entry_points(tmp_path: Path, text: str) -> list[list[str]]:
    f = tmp_path / "text.txt"
    f.write_text(text, encoding="utf-8")
    return [
        ["draft", "ann", text],
        ["draft", "ann", "--file", str(f)],
        ["drafts", "edit", "1", "--text", text],
        ["drafts", "edit", "1", "--file", str(f)],
        ["templates", "add", "new", text],
        ["templates", "add", "new", "--file", str(f)],
        ["contacts", "add", "zed", "--name", text],
        ["contacts", "add", "zed", "--note", text],
        ["contacts", "note", "ann", text],
        ["contacts", "engage", "ann", "--evidence", text],
        ["review", "1", "--reject", "--reason", text],
        ["draft", "ann", "--template", "ok", "--var", f"event={text}"],
    ]


def _setup(cli) -> None:
    add_talking_contact("ann", "Ann Lee", "2001")
    assert draft_json(cli, "ann", "Thanks Ann, noted.")["id"] == 1
    assert cli("templates", "add", "ok", TEMPLATE_OK + " {event}").exit_code == 0


def _unchanged(cli) -> None:
    assert [d["text"] for d in cli("drafts", "list", "--json").json()] == ["Thanks Ann, noted."]
    assert cli("drafts", "show", "1", "--json").json()["status"] == "draft"
    assert [t["name"] for t in cli("templates", "list", "--json").json()] == ["ok"]
    assert [c["handle"] for c in cli("contacts", "list", "--json").json()] == ["ann"]
    shown = cli("contacts", "show", "ann", "--json").json()
    assert shown["notes"] == [] and [e["kind"] for e in shown["evidence"]] == ["inbound_dm"]


@pytest.mark.parametrize("bad", ["Hi\x00there", "Hi \x1b[2Jthere", "Hi\x7fthere", "Hi\x85"])
def test_every_entry_point_refuses_a_control_character(cli, tmp_path: Path, bad: str) -> None:
    _setup(cli)
    for args in _entry_points(tmp_path, bad):
        r = cli(*args, "--json") if args[0] == "draft" else cli(*args)
        assert r.exit_code == 1, (args, r)
        err = r.stderr if args[0] != "draft" else json.loads(r.stderr)["error"]["message"]
        assert "control character" in err, (args, r.stderr)
    _unchanged(cli)


def test_every_entry_point_takes_zero_width_spaces_for_empty(cli, tmp_path: Path) -> None:
    _setup(cli)
    for args in _entry_points(tmp_path, "\u200b\u200b \u200d"):
        if args[:2] in (["contacts", "add"], ["review", "1"]) or "--var" in args:
            continue  # a blank name, reason or value is no name, reason or value
        r = cli(*args)
        assert r.exit_code in (1, 2), (args, r)
        assert "empty" in r.stderr or "must say" in r.stderr, (args, r.stderr)
    _unchanged(cli)


def test_crlf_becomes_lf_before_anything_else(cli, tmp_path: Path) -> None:
    add_talking_contact("ann", "Ann Lee", "2001")
    f = tmp_path / "windows.txt"
    f.write_bytes(b"Thanks Ann,\r\nsee you Friday.\r\n")
    assert draft_json(cli, "ann", "--file", str(f))["text"] == "Thanks Ann,\nsee you Friday."


def test_the_draft_from_issue_11_is_refused_and_nothing_is_stored(cli) -> None:
    add_talking_contact("ann", "Ann Lee", "2001")
    r = cli("draft", "ann", "Hi\0there")
    assert r.exit_code == 1 and "U+0000" in r.stderr
    assert cli("drafts", "list", "--json").json() == []


def test_a_stored_draft_with_a_control_character_cannot_be_approved(cli, db, store_engine) -> None:
    """A draft from before this check (or written to the store by other means)
    is caught by lint, which runs again at approval and at send."""
    add_talking_contact("ann", "Ann Lee", "2001")
    did = draft_json(cli, "ann", "Thanks Ann, see you.")["id"]
    control = "\x00" if store_engine == "sqlite" else "\x07"  # PostgreSQL text cannot hold NUL
    db("UPDATE drafts SET text = ? WHERE id = ?", (f"Thanks{control} Ann", did))
    shown = cli("drafts", "show", str(did), "--json").json()
    assert [f["code"] for f in shown["findings"]] == ["L002"]
    assert cli("review", str(did), "--approve").exit_code == 3


def test_a_template_stored_before_the_check_gives_l001_not_a_crash(cli, db) -> None:
    """Templates saved by 0.1.0 may hold anything; drafting from them never calls
    str.format and flags every brace left (L001), which blocks approval."""
    add_talking_contact("ann", "Ann Lee", "2001")
    assert cli("templates", "add", "t", "Hi {name}").exit_code == 0
    db("UPDATE templates SET text = ? WHERE name = 't'", ("Hi {name[0]} {} {name:>99999999999} {",))
    d = draft_json(cli, "ann", "--template", "t")
    assert d["text"] == "Hi {name[0]} {} {name:>99999999999} {"
    assert [(f["code"], f["severity"]) for f in d["findings"]] == [("L001", "error")]
    assert cli("review", str(d["id"]), "--approve").exit_code == 3


def test_a_typed_draft_keeps_its_kaomoji(cli) -> None:
    add_talking_contact("ann", "Ann Lee", "2001")
    d = draft_json(cli, "ann", "Thanks Ann (^_^){ see you Friday }")
    assert d["findings"] == []
    assert cli("review", str(d["id"]), "--approve").exit_code == 0


def test_names_from_x_are_cleaned_not_refused(cli, world) -> None:
    from tests.xworld import ALICE, sync

    world.add_user("alice", "Alice\x1b]0;pwned\x07 \n Smith\x00", user_id=ALICE)
    world.incoming_dm(ALICE, "hello there")
    sync(cli)
    shown = cli("contacts", "show", "alice", "--json").json()
    assert shown["name"] == "Alice]0;pwned Smith"
    exported = cli("contacts", "export").stdout
    assert "\x1b" not in exported and "\x00" not in exported


def test_a_var_value_is_checked_but_kept_as_written(cli) -> None:
    add_talking_contact("ann", "Ann Lee", "2001")
    assert cli("templates", "add", "t", "Thanks Ann{tail}").exit_code == 0
    d = draft_json(cli, "ann", "--template", "t", "--var", "tail=, see you  soon")
    assert d["text"] == "Thanks Ann, see you  soon"
    assert cli("draft", "ann", "--template", "t", "--var", "tail=\x1b[2J").exit_code == 1
