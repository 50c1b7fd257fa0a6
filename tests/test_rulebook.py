"""The rule model as a rule author meets it: the kind registry, every reference checked at load with
file:line:col and exit 2 (by `rules check` and by `run --rules`), the catalogue, the cases runner."""

from __future__ import annotations

import re
import subprocess
import sys
import typing

import pytest
from typer.testing import CliRunner

from audits.cli import app
from audits.engines import ENGINES
from audits.kinds import KINDS, Check
from audits.kinds.text import Negation
from audits.rulebook.book import load_rulebook
from audits.rulebook.cases import load_cases
from tests.conftest import ROOT

BOOK = load_rulebook(ROOT / "rules")
RUNNER = CliRunner()


def test_every_kind_is_registered_once_with_an_engine_that_expresses_its_verdicts():
    union = typing.get_args(typing.get_args(Check)[0])
    assert list(union) == list(KINDS.values())
    assert len({k.name() for k in union}) == len(union)
    for name, kind in KINDS.items():
        assert kind.engine in ENGINES, name
        assert set(kind.verdicts) <= ENGINES[kind.engine], name
        assert kind.title and kind.description and kind.example, name
        # the example in the catalogue is itself a valid check of the kind
        from ruamel.yaml import YAML

        kind.model_validate(YAML(typ="safe").load(kind.example))


def test_every_rule_is_documented_and_has_passing_and_failing_cases():
    cases: dict[str, list[str]] = {}
    for case in load_cases(ROOT / "rules"):
        cases.setdefault(case.rule, []).append(case.name)
    for rule in BOOK.rules:
        assert rule.title and rule.explanation and rule.basis and rule.message, rule.id
        names = cases.get(rule.id, [])
        assert any(n.startswith("pass") for n in names), f"{rule.id} has no passing case"
        assert any(n.startswith("fail") for n in names), f"{rule.id} has no failing case"
    assert set(cases) <= {r.id for r in BOOK.rules}, "a case file for a rule that does not exist"


def test_no_basis_names_a_file_of_ours():
    for rule in BOOK.rules:
        assert not re.search(r"domain\.md|\.ya?ml|\.py|§", rule.basis + rule.explanation), rule.id


def _copy(tmp_path, file: str, old: str, new: str):
    """A copy of rules/ with one edit in `file`; returns the folder and the edit's line and column."""
    folder = tmp_path / "rules"
    (folder / "templates").mkdir(parents=True)
    for p in (ROOT / "rules" / "templates").glob("*.yaml"):
        (folder / "templates" / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    for p in (ROOT / "rules").glob("*.yaml"):
        text = p.read_text(encoding="utf-8")
        if p.name == file:
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        (folder / p.name).write_text(text, encoding="utf-8")
    return folder


def _where(folder, file: str, typo: str) -> str:
    for no, line in enumerate((folder / file).read_text(encoding="utf-8").splitlines(), 1):
        if typo in line:
            return f"{file}:{no}:{line.index(typo) + 1}:"
    raise AssertionError(typo)


BROKEN = [
    # (what is broken, file, old, new, the text the error points at)
    ("expression name (T4-SUM's real typo)", "identities.yaml", "expr: maintain + correct + other + pending = total", "expr: maintain + corect + other + pending = total", "corect"),
    ("row (REG-POWER's real typo)", "advisory.yaml", "      row: regulations", "      row: regulashuns", "regulashuns"),
    ("table", "identities.yaml", "      table: review_litigation", "      table: review_litigaton", "review_litigaton"),
    ("column", "advisory.yaml", "      col: made", "      col: mad", "mad"),
    ("cell key in a claim's figure", "claims.yaml", "figure: [applications.other_unpaid_fee.total]", "figure: [applications.other_unpayed_fee.total]", "applications.other_unpayed_fee.total"),
    ("placeholder", "identities.yaml", "message: \"表四“{row_label}”：{lhs} ≠ 总计 {total}\"", "message: \"表四“{row_labl}”：{lhs} ≠ 总计 {total}\"", "{row_labl}"),
    ("regex the engine rejects (a lookbehind)", "claims.yaml", 'pattern: "行政复议(?:案件)?', 'pattern: "(?<=因)行政复议(?:案件)?', "(?<=因)"),
    ("section key", "advisory.yaml", "      section: overview", "      section: overveiw", "overveiw"),
    ("function call in a cell condition", "advisory.yaml", "      expr: value = 0", "      expr: read_csv('/etc/passwd') = 0", "read_csv"),
    ("unknown kind", "integrity.yaml", "kind: negation", "kind: negatoin", "kind: negatoin"),
]


@pytest.mark.parametrize("what,file,old,new,typo", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_reference_is_refused_with_its_position(tmp_path, what, file, old, new, typo):
    folder = _copy(tmp_path, file, old, new)
    where = _where(folder, file, typo)
    checked = RUNNER.invoke(app, ["rules", "check", str(folder)])
    assert checked.exit_code == 2 and where in checked.output, checked.output
    ran = RUNNER.invoke(app, ["run", str(ROOT / "rules" / "cases"), "--rules", str(folder), "--out", str(tmp_path / "out")])
    assert ran.exit_code == 2 and where in ran.output, ran.output
    assert not (tmp_path / "out").exists(), "nothing may run with a broken rulebook"


def test_a_kind_whose_engine_does_not_exist_is_refused_at_load(tmp_path, monkeypatch):
    monkeypatch.setattr(Negation, "engine", "spark")
    result = RUNNER.invoke(app, ["rules", "check", str(ROOT / "rules")])
    assert result.exit_code == 2
    assert re.search(r"integrity\.yaml:\d+:\d+: NEGATION-LOST: .*引擎 spark", result.output), result.output


def test_a_kind_asking_an_engine_for_a_verdict_it_cannot_express_is_refused(monkeypatch):
    from audits.engines.verdicts import Holds

    monkeypatch.setattr(Negation, "verdicts", (Holds,))
    result = RUNNER.invoke(app, ["rules", "check", str(ROOT / "rules")])
    assert result.exit_code == 2 and "无法判断检查种类 negation 的 Holds" in result.output, result.output


def test_every_mistake_of_a_folder_is_reported_at_once(tmp_path):
    folder = _copy(tmp_path, "identities.yaml", "expr: maintain + correct + other + pending = total", "expr: maintain + corect + other + pending = totl")
    text = (folder / "advisory.yaml").read_text(encoding="utf-8").replace("      row: regulations", "      row: regulashuns")
    (folder / "advisory.yaml").write_text(text, encoding="utf-8")
    result = RUNNER.invoke(app, ["rules", "check", str(folder)])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if re.match(r".+\.yaml:\d+:\d+: ", line)]
    assert len(errors) >= 3, result.output
    assert all(any(typo in line for line in errors) for typo in ("corect", "totl", "regulashuns"))


def test_rules_check_accepts_the_shipped_rules():
    result = RUNNER.invoke(app, ["rules", "check", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    assert f"{len(BOOK.rules)} 条规则" in result.output


def test_unknown_category_is_named_with_file_and_line(tmp_path):
    folder = _copy(tmp_path, "identities.yaml", "    category: table_identity\n    severity: error\n    basis: 国办公开办函〔2021〕30号 表四", "    category: table_identiy\n    severity: error\n    basis: 国办公开办函〔2021〕30号 表四")
    result = RUNNER.invoke(app, ["rules", "check", str(folder)])
    assert result.exit_code == 2 and _where(folder, "identities.yaml", "category: table_identiy") in result.output, result.output


def test_yaml_syntax_error_and_unsafe_tag(tmp_path):
    folder = _copy(tmp_path, "identities.yaml", "family: identities", "family: identities\nrules: [unclosed\n")
    assert RUNNER.invoke(app, ["rules", "check", str(folder)]).exit_code == 2
    folder2 = _copy(tmp_path / "b", "identities.yaml", "family: identities", "family: !!python/object/apply:os.system ['echo pwned']")
    result = subprocess.run([sys.executable, "-m", "audits.cli", "rules", "check", str(folder2)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "pwned" not in result.stdout


def test_unknown_flag_and_missing_path_exit_2(tmp_path):
    assert subprocess.run([sys.executable, "-m", "audits.cli", "run", "--no-such-flag"], capture_output=True, cwd=ROOT).returncode == 2
    assert RUNNER.invoke(app, ["run", str(tmp_path / "nope")]).exit_code == 2


def test_rule_cases_run_against_any_rules_folder_and_say_what_was_expected(tmp_path):
    # A rule author weakens T4-SUM in a copy of the rules: its failing cases must say which finding
    # was expected and which came.
    folder = _copy(tmp_path, "identities.yaml", "expr: maintain + correct + other + pending = total", "expr: maintain + correct + other <= total")
    import shutil

    shutil.copytree(ROOT / "rules" / "cases", folder / "cases")
    result = RUNNER.invoke(app, ["rules", "test", str(folder), "--shared", str(tmp_path / "no-shared")])
    assert result.exit_code == 1, result.output
    assert "不成立 T4-SUM::fail_review_total" in result.output
    assert "没有符合" in result.output and "0 + 0 + 0 + 1 ≠ 2" in result.output
    assert "跳过 T4-SUM::fail_real_hongze_2023" in result.output


def test_catalogue_lists_every_kind_and_rule(tmp_path):
    out = tmp_path / "rules.html"
    result = RUNNER.invoke(app, ["rules", "doc", str(ROOT / "rules"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    for name, kind in KINDS.items():
        assert f'id="kind-{name}"' in html and kind.title in html
    for rule in BOOK.rules:
        assert f'id="{rule.id}"' in html and rule.title in html
    assert "{row_label}" in html and "maintain + correct + other + pending = total" in html
