"""The rule model: registry, documentation, and rule-file errors an author sees."""

from __future__ import annotations

import subprocess
import sys
import typing

from ruamel.yaml import YAML

from audits.checks import ENGINE_OF, Check
from audits.rulebook import load_rulebook
from tests.conftest import ROOT
from tests.rule_cases import case_files

BOOK = load_rulebook(ROOT / "rules")


def test_every_kind_has_exactly_one_engine():
    union = typing.get_args(typing.get_args(Check)[0])
    kinds = [typing.get_args(cls.model_fields["kind"].annotation)[0] for cls in union]
    assert sorted(kinds) == sorted(ENGINE_OF), "a kind without an engine, or an engine entry without a kind"
    assert set(ENGINE_OF.values()) == {"pandera", "great_expectations"}


def test_every_rule_is_documented_and_has_passing_and_failing_cases():
    cases = {}
    for path in case_files():
        doc = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        cases[doc["rule"]] = list(doc["cases"])
    for rule in BOOK.rules:
        assert rule.title and rule.explanation and rule.basis and rule.message, rule.id
        names = cases.get(rule.id, [])
        assert any(n.startswith("pass") for n in names), f"{rule.id} has no passing case"
        assert any(n.startswith("fail") for n in names), f"{rule.id} has no failing case"
    assert set(cases) <= {r.id for r in BOOK.rules}, "a case file for a rule that does not exist"


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "audits.cli", *args], capture_output=True, text=True, cwd=cwd)


def _rules_copy(tmp_path, edit):
    folder = tmp_path / "rules"
    (folder / "templates").mkdir(parents=True)
    for p in (ROOT / "rules" / "templates").glob("*.yaml"):
        (folder / "templates" / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    text = (ROOT / "rules" / "identities.yaml").read_text(encoding="utf-8")
    (folder / "identities.yaml").write_text(edit(text), encoding="utf-8")
    return folder


def test_rules_check_accepts_the_shipped_rules():
    result = _cli("rules", "check", "rules")
    assert result.returncode == 0, result.stderr
    assert f"{len(BOOK.rules)} 条规则" in result.stdout


def test_unknown_category_is_named_with_file_and_line(tmp_path):
    folder = _rules_copy(tmp_path, lambda t: t.replace("category: table_identity", "category: table_identiy", 1))
    result = _cli("rules", "check", str(folder))
    assert result.returncode == 2
    line = next(i for i, l in enumerate((folder / "identities.yaml").read_text(encoding="utf-8").splitlines(), 1) if "table_identiy" in l)
    assert f"identities.yaml:{line}:" in result.stderr.replace("\n", "")


def test_unparsable_expression_is_named_with_file_and_line(tmp_path):
    folder = _rules_copy(tmp_path, lambda t: t.replace("expr: maintain + correct + other + pending = total", "expr: maintain + + = total"))
    result = _cli("run", str(ROOT / "tests" / "data"), "--rules", str(folder), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    line = next(i for i, l in enumerate((folder / "identities.yaml").read_text(encoding="utf-8").splitlines(), 1) if "maintain + + =" in l)
    assert f"identities.yaml:{line}:" in result.stderr.replace("\n", "")


def test_yaml_syntax_error_and_unsafe_tag(tmp_path):
    folder = _rules_copy(tmp_path, lambda t: t + "\n  - id: [unclosed\n")
    assert _cli("rules", "check", str(folder)).returncode == 2
    folder2 = _rules_copy(tmp_path / "b", lambda t: t.replace("family: identities", "family: !!python/object/apply:os.system ['echo pwned']"))
    result = _cli("rules", "check", str(folder2))
    assert result.returncode == 2 and "pwned" not in result.stdout


def test_unknown_flag_and_missing_path_exit_2(tmp_path):
    assert _cli("run", "--no-such-flag").returncode == 2
    assert _cli("run", str(tmp_path / "nope")).returncode == 2
