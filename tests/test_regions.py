"""Regions (地区): from the roster or a manifest, else read from the agency's name against the
division table. Expected regions are those of the divisions the names begin with (GB/T 2260):
柳州市 is a city of 广西壮族自治区, 洪泽区 a district of 淮安市 (江苏省), 红旗区 one of 新乡市
(河南省), 灵武市 a county-level city of 银川市 (宁夏); 桥西区 is a district of both 石家庄市 and
张家口市 (河北省)."""

from __future__ import annotations

import lxml.html
import pytest

from audits.regions import Region, given_regions, infer, read_region, region_of
from tests.conftest import ROOT, SHARED, need_shared


@pytest.mark.parametrize(
    "name, province, city",
    [
        ("柳州市科学技术局", "广西壮族自治区", "柳州市"),
        ("淮安市洪泽区人民政府", "江苏省", "淮安市"),
        ("洪泽区人民政府", "江苏省", "淮安市"),
        ("红旗区科学技术局", "河南省", "新乡市"),
        ("灵武市科学技术局", "宁夏回族自治区", "银川市"),
        ("西藏自治区科学技术厅", "西藏自治区", ""),
        ("上海市人民政府办公厅", "上海市", ""),
        ("北京市海淀区人民政府", "北京市", "海淀区"),
        ("平潭综合实验区公安局", "福建省", "平潭"),
        ("中共柳州市委宣传部", "广西壮族自治区", "柳州市"),
        ("吉林市人民政府", "吉林省", "吉林市"),
        ("吉林省人民政府", "吉林省", ""),
        ("石家庄市桥西区科学技术局", "河北省", "石家庄市"),
    ],
)
def test_region_read_from_the_name(name, province, city):
    assert infer(name) == Region(province, city, "机关名称")


@pytest.mark.parametrize("name", ["桥西区科学技术局", "朝阳区人民政府", "国务院办公厅", "示例市交通运输局", ""])
def test_no_region_rather_than_a_guess(name):
    # 桥西区 and 朝阳区 are districts of more than one city; the others name no division
    assert infer(name) is None


def test_region_texts_of_a_roster():
    given = given_regions(
        [("柳州市科学技术局", "广西壮族自治区柳州市"), ("桥西区科学技术局", "河北省石家庄市"), ("平潭综合实验区行政审批局", "福建省"),
         ("某开发区管委会", "某开发区"), ("红旗区科学技术局", "")],
        "名录",
    )
    assert region_of(["柳州市科学技术局"], given) == Region("广西壮族自治区", "柳州市", "名录")
    assert region_of(["桥西区科学技术局"], given) == Region("河北省", "石家庄市", "名录")
    # the roster says only the province; the name says which part of it
    assert region_of(["平潭综合实验区行政审批局"], given) == Region("福建省", "平潭", "名录、机关名称")
    assert region_of(["某开发区管委会"], given) == Region("某开发区", "", "名录")  # kept as the office wrote it
    assert region_of(["红旗区科学技术局"], given) == Region("河南省", "新乡市", "机关名称")  # the roster leaves it empty
    # one agency under two names (淮安市洪泽区人民政府, 洪泽区人民政府) is one identity
    assert region_of(["洪泽区人民政府"], given_regions([("淮安市洪泽区人民政府", "江苏省淮安市")], "清单")).source == "清单"
    assert read_region("广西壮族自治区 柳州市") == Region("广西壮族自治区", "柳州市", "")


def test_regions_of_the_shared_reports(audited):
    # 18 of the 19 agencies of ../shared: 桥西区科学技术局 (seed 003) is the one a name cannot place
    agencies = {d["agency"]: d["region"] for d in audited.documents if d["agency"] and d["source"] != audited.hostile}
    assert len(agencies) == 19
    assert [a for a, r in agencies.items() if not r] == ["桥西区科学技术局"]
    assert agencies["柳州市科学技术局"] == "广西壮族自治区 柳州市"
    assert {r for a, r in agencies.items() if a.startswith("平潭综合实验区")} == {"福建省 平潭"}


def test_run_takes_regions_from_the_roster(tmp_path):
    from typer.testing import CliRunner

    from audits.cli import app

    need_shared()
    config = tmp_path / "config.toml"
    config.write_text(f'roster = "{ROOT / "config" / "roster.example.csv"}"\nstate_dir = "{tmp_path / "state"}"\n', encoding="utf-8")
    seed = next((SHARED / "seeds").glob("003_*"))  # 桥西区科学技术局; the roster says 河北省石家庄市
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(seed), "--rules", str(ROOT / "rules"), "--out", str(out), "--workers", "1", "--config", str(config)])
    assert result.exit_code == 0, result.output
    index = lxml.html.fromstring((out / "index.html").read_text(encoding="utf-8"))
    (row,) = index.xpath('//table[@id="reports"]/tbody/tr')
    assert row.get("data-region") == "河北省 石家庄市"
    page = lxml.html.fromstring((out / row.xpath("./td/a/@href")[0].split("#")[0]).read_text(encoding="utf-8"))
    assert "地区：河北省 石家庄市（依据：名录）" in page.xpath('//p[@class="meta"]')[0].text_content()
