"""The guide's admin rules (「重要！必ずお読みください」 and the note above it), one test per rule.

The guide shows no screen of the admin's menu, except that it names 「アカウント管理」 and the
「管理者用操作マニュアル」 reached from it: those two are read in chromium, the rest through the
engine. docs/seed.md maps every rule to its test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from flows import PASSWORD, login_of, logins_of
from guide import (
    EMAIL,
    HANA,
    PROVISIONING,
    admin_flow,
    heading,
    login_id,
    page_text,
    ready,
    register,
    sign_in,
    sign_in_page,
    texts,
)

import regflow

if TYPE_CHECKING:
    from conftest import Site
    from playwright.sync_api import Page

TARO = EMAIL  # the one who sets up first
JIRO = "jiro@example.jp"


def test_admin_rule_first_registrant_is_admin(engine: regflow.Engine,
                                              clock: regflow.ManualClock) -> None:
    """「複数アカウントをご利用いただいている場合、一番初めにこの設定をしていただく方が社労法務
    システム の「管理者」となります。」"""
    ready(engine, clock, ("abcd8-01", TARO), ("abcd8-02", HANA), ("abcd8-03", JIRO))
    assert [login_of(engine, a).role for a in (TARO, HANA, JIRO)] == ["admin", "member", "member"]


def test_admin_rule_seat_number_does_not_matter(engine: regflow.Engine,
                                                clock: regflow.ManualClock) -> None:
    """「●ASP ログインアカウントの数字は関係なく、管理者が必ず 01 アカウントでないといけないという
    ことはありません。」— the first to register, on abcd8-03, is the admin; abcd8-01 is not."""
    ready(engine, clock, ("abcd8-03", TARO), ("abcd8-01", HANA))
    assert (login_of(engine, TARO).role, login_of(engine, HANA).role) == ("admin", "member")
    admin = sign_in(engine, TARO, "abcd8-03")
    assert {row["email"]: row["role"] for row in engine.admin_logins(admin.session or "")} == {
        TARO: "admin", HANA: "member"}
    member = sign_in(engine, HANA, "abcd8-01")
    with pytest.raises(regflow.Forbidden):
        engine.admin_logins(member.session or "")


def test_admin_rule_admin_holds_the_other_accounts_settings(
        site: Site, page: Page, clock: regflow.ManualClock) -> None:
    """「他のアカウントの設定権限を持つこととなります」 and ⑥ ④「※アカウント一覧は管理者のみ使用
    可能」— the admin's アカウント管理 lists every login of the contract; a member gets none."""
    ready(site.engine, clock, ("abcd8-01", TARO), ("abcd8-02", HANA))
    sign_in_page(page, TARO)
    page.get_by_role("navigation").get_by_role("link", name="アカウント管理").click()
    heading(page, "アカウント管理")
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    assert "管理者" in rows.filter(has_text=TARO).inner_text()
    assert HANA in rows.filter(has_text=HANA).inner_text()

    member = site.tab()
    sign_in_page(member, HANA, account="abcd8-02")
    assert member.get_by_role("navigation").get_by_role("link", name="アカウント管理").count() == 0
    answer = member.goto("/admin")
    assert answer is not None
    assert answer.status == 403
    assert HANA not in page_text(member)
    assert TARO not in page_text(member)


def test_admin_rule_admin_change_only_from_admin_account(engine: regflow.Engine,
                                                         clock: regflow.ManualClock) -> None:
    """「●管理者は後から変更もできますが、変更の操作は管理者のアカウントでのみ行うことができます。」"""
    ready(engine, clock, ("abcd8-01", TARO), ("abcd8-02", HANA))
    taro = sign_in(engine, TARO, "abcd8-01").session or ""
    hana = sign_in(engine, HANA, "abcd8-02").session or ""
    with pytest.raises(regflow.Forbidden):  # a member cannot make itself admin
        engine.start("transfer_admin", {"target": login_of(engine, HANA).id}, session=hana)
    done = admin_flow(engine, "transfer_admin", taro, login_id(engine, taro, HANA))
    assert done.state == "done"
    assert (login_of(engine, TARO).role, login_of(engine, HANA).role) == ("member", "admin")
    with pytest.raises(regflow.Forbidden):  # the former admin cannot take it back
        engine.start("transfer_admin", {"target": login_of(engine, TARO).id}, session=taro)
    back = admin_flow(engine, "transfer_admin", hana, login_of(engine, TARO).id)
    assert back.state == "done"
    assert login_of(engine, TARO).role == "admin"


def test_admin_rule_admin_can_unlink_and_delete_logins(engine: regflow.Engine,
                                                       clock: regflow.ManualClock) -> None:
    """「●アカウントの紐づけ解除や、ログイン情報の削除は管理者が行うことができます。」and
    「後から結び付けの解除はできます」"""
    ready(engine, clock, ("abcd8-01", TARO), ("abcd8-02", HANA), ("abcd8-03", JIRO))
    taro = sign_in(engine, TARO, "abcd8-01").session or ""
    hana = sign_in(engine, HANA, "abcd8-02").session or ""
    jiro = sign_in(engine, JIRO, "abcd8-03").session or ""
    with pytest.raises(regflow.Forbidden):  # a member cannot
        engine.start("unlink_login", {"target": login_of(engine, JIRO).id}, session=hana)

    assert admin_flow(engine, "unlink_login", taro, login_id(engine, taro, HANA)).state == "done"
    assert login_of(engine, HANA).account is None
    with pytest.raises(regflow.NotSignedIn):  # its sign-in ended with the link
        engine.admin_logins(hana)
    assert sign_in(engine, HANA, "abcd8-02").state == "signed_in"  # linked again at its sign-in

    assert admin_flow(engine, "delete_login", taro, login_id(engine, taro, JIRO)).state == "done"
    assert JIRO not in [row.email for row in logins_of(engine)]
    refused = engine.start("sign_in", {"account": "abcd8-03"})
    refused = engine.send(refused, "submit", {"email": JIRO, "password": PASSWORD})
    assert (refused.state, [m.id for m in refused.screen.errors]) == ("credentials", ["credentials_invalid"])
    with pytest.raises(regflow.NotSignedIn):
        engine.admin_logins(jiro)


def test_admin_rule_admin_cannot_unlink_or_delete_itself(engine: regflow.Engine,
                                                         clock: regflow.ManualClock) -> None:
    """「後から結び付けの解除はできますが、一番はじめに設定をした「管理者」が結び付けの解除や削除を
    することができませんのでご注意ください。」"""
    ready(engine, clock, ("abcd8-01", TARO), ("abcd8-02", HANA))
    taro = sign_in(engine, TARO, "abcd8-01").session or ""
    me = login_of(engine, TARO).id
    for flow in ("unlink_login", "delete_login"):
        snap = admin_flow(engine, flow, taro, me)
        assert snap.state == "confirm", flow
        assert texts(snap) == ["管理者自身に対してはこの操作を行えません。先に管理者を変更してください。"]
    assert login_of(engine, TARO).account == "abcd8-01"
    assert login_of(engine, TARO).role == "admin"
    assert engine.admin_logins(taro)  # still signed in, still the admin


def test_admin_rule_manual_from_account_management(site: Site, page: Page,
                                                   clock: regflow.ManualClock) -> None:
    """「●操作方法は別途「管理者用操作マニュアル」に記載しております。「管理者用操作マニュアル」は、
    「アカウント管理」メニューからログインすることでダウンロードできます。」"""
    ready(site.engine, clock, ("abcd8-01", TARO), ("abcd8-02", HANA))
    anonymous = site.tab().request.get("/admin/manual", max_redirects=0)
    assert anonymous.status in (401, 403)  # only after signing in

    sign_in_page(page, TARO)
    page.get_by_role("navigation").get_by_role("link", name="アカウント管理").click()
    heading(page, "アカウント管理")
    link = page.get_by_role("link", name="管理者用操作マニュアル", exact=True)
    assert link.get_attribute("href") == "/admin/manual"
    manual = page.request.get("/admin/manual")  # this browser's cookies: the admin's sign-in
    assert manual.status == 200
    if "html" in manual.headers.get("content-type", ""):
        assert "管理者用操作マニュアル" in manual.text()
    downloads = [href for href in page.locator("a").evaluate_all("links => links.map(a => a.href)")
                 if "/admin/manual/" in href]  # ダウンロードできます: a file to keep, where offered
    for href in downloads:
        assert page.request.get(href).status == 200, href

    member = site.tab()
    sign_in_page(member, HANA, account="abcd8-02")
    for href in ["/admin/manual", *downloads]:
        assert member.request.get(href, max_redirects=0).status == 403, href


def test_admin_rule_a_second_registrant_is_not_admin_even_after_waiting(
        engine: regflow.Engine, clock: regflow.ManualClock) -> None:
    """「必ず責任者または管理者となる方が最初に設定を行ってください。」— who registers first is the
    admin, even if the later one signs in first."""
    register(engine, "abcd8-02", HANA)
    clock.advance(60)
    register(engine, "abcd8-01", TARO)
    clock.advance(PROVISIONING)
    sign_in(engine, TARO, "abcd8-01")
    sign_in(engine, HANA, "abcd8-02")
    assert (login_of(engine, HANA).role, login_of(engine, TARO).role) == ("admin", "member")
