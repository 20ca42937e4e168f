"""``gridbot demo``'s part 6: an org admin approves an app request with a button."""

from __future__ import annotations

import io

from gridbot.demo import approve_with_a_button
from gridbot.testing import GridSimulator


async def test_the_demo_approves_an_app_request_with_a_button() -> None:
    out = io.StringIO()
    async with GridSimulator(seed=42) as sim:
        assert await approve_with_a_button(sim, out, None)
        assert sim.admin.resolutions == {("T0TEAM002", "A0OTHER01"): "approved"}
    lines = out.getvalue().splitlines()
    assert "  #app-approvals  bob (Team Two) asks for Polly, with buttons" in lines
    assert any(line.startswith("  dave clicks 'Approve for team T0TEAM002': acked in ") for line in lines)
    assert (
        "  the message now reads: ✅ Approved Polly (request Ar0REQ0001) for team T0TEAM002, by <@W0DAVE001>"
        in lines
    )
    assert lines[-1] == "  Slack's admin API: Polly is approved for Team Two"
