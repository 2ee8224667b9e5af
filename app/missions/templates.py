"""Mission templates ("modèles de mission"): a mission text that admins and coordinators write, and that an admin or
a national referent validates once — never its author nor its last editor; managers make missions from a validated
one (its text fixed, they add dates, places and addresses), which publish without moderation. An edit sends a
template back to draft until it is validated again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar.exceptions import NotFoundException
from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import Roles
from app.missions.exceptions import DecisionRefused, MissionTransitionRefused
from app.missions.models import Mission, MissionTemplate
from app.missions.schemas import TEMPLATE_STATUS_LABELS
from app.missions.validation import TEXT_FIELDS, MissionInvalid, validate_text
from app.reference import DOMAINS

# (status, action) → new status
TRANSITIONS = {
    ("draft", "validate"): "validated",
    ("draft", "archive"): "archived",
    ("validated", "archive"): "archived",
}
ACTIONS = {"valider": "validate", "archiver": "archive"}
ACTION_LABELS = {"validate": "validé", "archive": "archivé"}
EDITABLE = {"draft", "validated"}
NOT_OFFERED = "Ce modèle n'est pas proposé (il n'est pas validé ou a été archivé) : choisissez-en un autre."
NOT_A_REVIEWER = ("Un modèle de mission est validé par une personne de l'administration ou un·e référent·e "
                  "national·e : vous pouvez le rédiger et le modifier, pas le valider.")
OWN_TEXT = ("Vous avez rédigé ou modifié ce modèle en dernier : une autre personne de l'administration ou de la "
            "référence nationale doit le valider.")


class TemplateNotFound(NotFoundException):
    """No such template (a French 404 through the shared HTTP error page)."""


@dataclass(frozen=True, slots=True)
class TemplateRead:
    id: int
    title: str
    description: str
    domain: str
    domain_label: str
    activities: list[str]
    open_to_minors: bool
    prerequisites: str | None
    status: str
    status_label: str
    authors: tuple[int, ...]  # who wrote its text: its author and its last editor

    def actions(self, roles: Roles, user_id: int) -> dict[str, str]:
        """This person's buttons: archiving for everyone on the page, validating for a reviewer of someone else's
        text."""
        return {decision: action for decision, action in ACTIONS.items() if (self.status, action) in TRANSITIONS
                and (action != "validate" or (reviewer(roles) and user_id not in self.authors))}


def reviewer(roles: Roles) -> bool:
    return roles.admin or roles.national_referent


def editor(roles: Roles) -> bool:
    return roles.admin or roles.coordinator


def _read(template: MissionTemplate) -> TemplateRead:
    return TemplateRead(
        id=template.id, title=template.title, description=template.description, domain=template.domain,
        domain_label=DOMAINS.get(template.domain, template.domain), activities=list(template.activities),
        open_to_minors=template.open_to_minors, prerequisites=template.prerequisites, status=template.status,
        status_label=TEMPLATE_STATUS_LABELS[template.status],
        authors=tuple(user for user in (template.created_by, template.edited_by) if user is not None),
    )


def text_values(source: MissionTemplate | Mission) -> dict[str, Any]:
    """A template's (or a mission's) text as the mission form sends it, to be validated like a typed one."""
    return {
        "title": source.title, "description": source.description, "domain": source.domain,
        "activities": list(source.activities), "open_to_minors": "1" if source.open_to_minors else "",
        "prerequisites": source.prerequisites or "",
    }


async def _load(session: AsyncSession, template_id: int, *, lock: bool = False) -> MissionTemplate:
    query = select(MissionTemplate).where(MissionTemplate.id == template_id)
    template = await session.scalar(query.with_for_update() if lock else query)
    if template is None:
        raise TemplateNotFound
    return template


async def listing(session: AsyncSession) -> list[TemplateRead]:
    """Drafts first (they wait for a decision), then the validated ones, then the archive; by title."""
    order = case({"draft": 0, "validated": 1}, value=MissionTemplate.status, else_=2)
    rows = await session.scalars(select(MissionTemplate).order_by(order, MissionTemplate.title, MissionTemplate.id))
    return [_read(template) for template in rows]


async def validated(session: AsyncSession) -> list[TemplateRead]:
    rows = await session.scalars(
        select(MissionTemplate).where(MissionTemplate.status == "validated").order_by(MissionTemplate.title)
    )
    return [_read(template) for template in rows]


async def get(session: AsyncSession, template_id: int) -> TemplateRead:
    return _read(await _load(session, template_id))


async def offered(session: AsyncSession, template_id: int) -> MissionTemplate:
    """A template a manager may make a mission from: a validated one."""
    template = await session.scalar(select(MissionTemplate).where(MissionTemplate.id == template_id))
    if template is None or template.status != "validated":
        raise MissionInvalid({"modele": NOT_OFFERED})
    return template


async def create(session: AsyncSession, data: dict[str, Any], *, user_id: int) -> TemplateRead:
    template = MissionTemplate(status="draft", created_by=user_id, edited_by=user_id, **validate_text(data))
    session.add(template)
    await session.flush()
    return _read(template)


async def edit(session: AsyncSession, template_id: int, data: dict[str, Any], *, user_id: int) -> TemplateRead:
    template = await _load(session, template_id, lock=True)
    if template.status not in EDITABLE:
        raise MissionTransitionRefused("Un modèle archivé ne peut plus être modifié.")
    for field, value in validate_text(data).items():
        setattr(template, field, value)
    now = datetime.now(UTC)
    template.status, template.updated_at = "draft", now  # a changed text is validated again, by someone else
    template.edited_by = user_id
    await session.flush()
    return _read(template)


async def transition(session: AsyncSession, template_id: int, action: str, *, roles: Roles,
                     user_id: int) -> TemplateRead:
    template = await _load(session, template_id, lock=True)
    if action == "validate":
        if not reviewer(roles):
            raise DecisionRefused(NOT_A_REVIEWER)
        if user_id in (template.created_by, template.edited_by):
            raise DecisionRefused(OWN_TEXT)
    target = TRANSITIONS.get((template.status, action))
    if target is None:
        raise MissionTransitionRefused(
            f"Ce modèle est « {TEMPLATE_STATUS_LABELS[template.status].lower()} » : "
            f"il ne peut pas être {ACTION_LABELS[action]}."
        )
    template.status, template.updated_at = target, datetime.now(UTC)
    await session.flush()
    return _read(template)


def form_values(template: TemplateRead) -> dict[str, Any]:
    values: dict[str, Any] = {field: getattr(template, field) for field in TEXT_FIELDS}
    values["activities"] = list(template.activities)
    values["prerequisites"] = template.prerequisites or ""
    return values
