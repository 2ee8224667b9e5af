"""The search page (keywords, every filter, pagination, an error) and the forms with the activity checkboxes, in a
real headless Chromium on the showcase data: no serious or critical axe-core violation at 1280 and 390 px, and
nothing wider than the phone's screen."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from ops.screenshots import Stop
from tests.accessibility import audit, blocking_violations, overflow
from tests.test_pages_audit_browser import clean_state, opened, showcase, states, viewport  # noqa: F401 (fixtures)

STOPS = [
    Stop("recherche-pagination", "/missions?postal_code=75011&radius_km=500&per_page=1&page=3"),
    Stop("recherche-mots-cles", "/missions?keywords=colis+-nuit&sort=pertinence&activity=distribution"),
    Stop("recherche-erreurs", "/missions?keywords=" + "a" * 101 + "&activity=inconnue&department=999", status=422),
    Stop("recherche-au-dela", "/missions?per_page=1&page=99"),
    Stop("mission-modifier", "/missions/{mission_id}/modifier", who="manager"),
    Stop("modele-nouveau", "/modeles-missions/nouveau", who="coordinator"),
]


@pytest.mark.parametrize("opened", STOPS, ids=[stop.name for stop in STOPS], indirect=True)
async def test_search_pages_and_activity_forms_are_accessible_and_fit_a_phone(
    opened: Page, viewport: str  # noqa: F811 (the fixtures imported above)
) -> None:
    problems = [f"axe {line}" for line in blocking_violations(await audit(opened))]
    if viewport == "phone" and (found := await overflow(opened)):
        problems.append(found)
    assert not problems, f"{opened.url} at {viewport}:\n" + "\n".join(problems)
