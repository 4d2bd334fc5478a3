"""docs/strategies.md stays true: its first strategy runs and keeps the rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from raceway.testing import Participant, Scenario, check_strategy, simulate

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "strategies.md"


def test_the_guides_first_strategy_keeps_the_rules() -> None:
    found = re.search(r"<!-- fastest -->\n```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert found, "the guide's Fastest example is missing"
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), str(GUIDE), "exec"), namespace)
    fastest = namespace["Fastest"]
    check_strategy(fastest)
    race = Scenario(participants=(Participant(name="a", end=0.05, fails=True), Participant(name="b", ttft=0.12)))
    assert simulate(fastest, race).timeline() == (
        "a: start 0, fail 0.050 | b: start 0, token 0.120 -> picked b at 0.120 (losers cancelled at 0.370)"
    )
