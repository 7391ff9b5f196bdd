"""The compliance dashboard, keyboard only at 80×24: at a glance, drill into the audit log, verify,
write the report, and the same in the 16-colour theme with every chart readable as numbers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rich.cells import cell_len
from textual.widgets import OptionList, Static

from models import customers, dashboard
from models.audit import AuditEntry
from models.customers import Customer
from screens.audit_log import AuditLogScreen, VerifyScreen
from screens.dashboard import ChartPanel, DashboardScreen, ReportScreen
from tests.pilot.conftest import wait_for
from tests.pilot.test_audit_log import footer_fits, login, open_menu
from tui.app import RecordKeeperApp


@pytest.fixture
def busy_clerk(demo_office, monkeypatch):
    """The clerk reveals more than the (lowered) threshold allows."""
    from models import staff
    from tests.conftest import TEST_PASSWORD

    monkeypatch.setattr(dashboard, "REVEAL_ALERT_PER_WEEK", 1)
    clerk = staff.authenticate("clerk", TEST_PASSWORD)
    number = Customer.select(Customer.customer_no).first().customer_no
    for _ in range(6):
        customers.reveal_fields(clerk, number, ["mobile"], "客户来电核实身份")
    return demo_office


async def open_dashboard(pilot, username: str = "supervisor") -> DashboardScreen:
    await login(pilot, username)
    await open_menu(pilot, "compliance")
    screen = pilot.app.screen
    assert isinstance(screen, DashboardScreen)
    await wait_for(pilot, lambda: screen.board is not None)
    await pilot.pause()
    return screen


def text_of(widget) -> str:
    return str(widget.render())


async def test_a_supervisor_drills_from_an_anomaly_to_the_entries_behind_it(busy_clerk, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_dashboard(pilot)
        kinds = [a.kind for a in screen.board.anomalies]
        assert "reveals_high" in kinds and "chain_unverified" in kinds
        assert "Reveals 6" in text_of(screen.query_one("#dash-figures", Static))
        assert "NOT VERIFIED" in text_of(screen.query_one("#dash-chain", Static))
        reveals = text_of(screen.query_one("#chart-reveals", ChartPanel))
        assert "clerk" in reveals and "6" in reveals and "▲over" in reveals
        menu = screen.query_one("#anomalies", OptionList)
        assert app.focused is menu
        for _ in range(kinds.index("reveals_high")):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditLogScreen) and app.screen.page is not None)
        log = app.screen
        assert (log.flt.staff, log.flt.action) == ("clerk", "REVEAL") and log.flt.since == screen.board.start
        assert [r.action for r in log.page.rows] == ["REVEAL"] * 6
        assert log.query_one("#f-staff").value == "clerk"  # the filter is shown, and can be changed
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)


async def test_verify_from_the_dashboard_and_write_the_report(busy_clerk, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_dashboard(pilot, "auditor")
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, VerifyScreen) and app.screen.result is not None)
        assert app.screen.result.ok
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen and screen.board and screen.board.chain.ok)
        assert "INTACT" in text_of(screen.query_one("#dash-chain", Static))
        assert "chain_unverified" not in [a.kind for a in screen.board.anomalies]
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen))
        report_screen = app.screen
        await wait_for(pilot, lambda: "Written" in text_of(report_screen.query_one("#report-result", Static)))
        written = text_of(report_screen.query_one("#report-result", Static))
        assert "INTACT" in written and ".md" in written and ".html" in written
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen)
    exports = sorted(p.name for p in settings.export_dir.iterdir())
    assert any(n.endswith(".md") for n in exports) and any(n.endswith(".html") for n in exports)
    assert AuditEntry.select().where(AuditEntry.action == "REPORT_WRITE").count() == 1


async def test_period_branch_and_numbers_keys(busy_clerk, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_dashboard(pilot)
        assert (screen.board.end - screen.board.start).days == 29
        await pilot.press("f6")
        await wait_for(pilot, lambda: (screen.board.end - screen.board.start).days == 89)
        branch_names = list(screen.branch_names)
        assert branch_names
        await pilot.press("f7")
        await wait_for(pilot, lambda: screen.board.branch == branch_names[0])
        assert branch_names[0] in text_of(screen.query_one("#dash-title", Static))
        chart = screen.query_one("#chart-verification_overdue", ChartPanel)
        await pilot.press("f3")
        await pilot.pause()
        assert not any(block in text_of(chart) for block in "█▏▎▍▌▋▊▉")


@pytest.mark.parametrize("environ", [{"NO_COLOR": "1"}, {}], ids=["16-colour", "colour"])
async def test_the_dashboard_fits_80x24_in_the_16_colour_theme(busy_clerk, settings, environ):
    app = RecordKeeperApp(replace(settings, theme="recordkeeper-mono"), environ={"LANG": "en_US.UTF-8", **environ})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_dashboard(pilot)
        assert app.theme == "recordkeeper-mono"
        assert footer_fits(screen) == []
        for panel in screen.query(ChartPanel):
            lines = text_of(panel).splitlines()
            assert lines, panel.id
            widest = max(cell_len(line) for line in lines)
            assert widest <= panel.content_region.width, (panel.id, widest, panel.content_region.width)
            assert panel.region.right <= 80
        # Flagged bars carry a word, not only a colour; every bar carries its number.
        reveals = text_of(screen.query_one("#chart-reveals", ChartPanel))
        assert "▲over" in reveals and " 6" in reveals
        menu = screen.query_one("#anomalies", OptionList)
        for index in range(menu.option_count):
            assert menu.get_option_at_index(index).prompt.plain.split()[0] in ("SERIOUS", "check")
