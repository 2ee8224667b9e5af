"""City pages: a local authority's managers write their commune's page (plain paragraphs and promoted missions
chosen among their online missions) and send it for validation; a referent of the commune's department validates
or refuses it with a reason, never on a page of an authority they manage. The validated version stays shown while
a newer one waits; validating one bumps the missions' version counter so the cached commune page is built again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import Roles, SignedIn
from app.geo.models import Commune
from app.missions.cache import mark_changed
from app.missions.models import Mission
from app.missions.service import ONLINE_STATUSES
from app.organisations.models import Organisation
from app.organisations.notifications import stamp
from app.organisations.service import slugify
from app.territories.figures import PROMOTED_MAX
from app.territories.models import CityPage
from app.text_rules import TextRefused, clean_text

TEXT_LENGTH = 5_000
REASON_LENGTH = 2_000
DECISIONS = {"valider": "validate", "refuser": "refuse"}
REVIEW_LABELS = {"awaiting_validation": "En attente de validation", "refused": "Refusée", "validated": "Validée"}


class CityPageRefused(Exception):
    """A request the service will not carry out; `status` and a French `message` for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CityPageInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid city page")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Choice:
    id: int
    title: str
    path: str


@dataclass(frozen=True, slots=True)
class Authority:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Editor:
    """What the edit page shows: the commune, the authorities the person manages there, their online missions to
    choose from, and the page as it stands."""

    commune_code: str
    commune_name: str
    authorities: list[Authority]
    missions: list[Choice]
    page: CityPage | None


@dataclass(frozen=True, slots=True)
class Waiting:
    commune_code: str
    commune_name: str
    department_code: str
    organisation_name: str
    text: str
    missions: list[Choice]
    proposed_at: datetime
    published: bool  # a validated version is online meanwhile
    version: str
    own: bool  # the referent manages the authority: someone else decides


def version(page: CityPage) -> str:
    """Names the proposed version a referent read: the moment it was sent."""
    return str(stamp(page.proposed_at))


async def _commune(session: AsyncSession, code: str) -> Commune:
    commune = await session.get(Commune, code)
    if commune is None:
        raise CityPageRefused(404, "Cette commune n'existe pas : vérifiez son code INSEE.")
    return commune


async def _authorities(session: AsyncSession, code: str, roles: Roles) -> list[Authority]:
    """The validated local authorities of the commune that the person manages."""
    rows = await session.execute(
        select(Organisation.id, Organisation.name).where(
            Organisation.commune_code == code, Organisation.type == "collectivite",
            Organisation.status == "validated", Organisation.id.in_(roles.organisations),
        ).order_by(Organisation.id)
    )
    return [Authority(organisation_id, name) for organisation_id, name in rows]


async def _choices(session: AsyncSession, organisation_ids: list[int]) -> list[Choice]:
    rows = await session.execute(
        select(Mission.id, Mission.title).where(Mission.organisation_id.in_(organisation_ids),
                                                Mission.status.in_(ONLINE_STATUSES))
        .order_by(Mission.created_at.desc(), Mission.id.desc()).limit(100)
    )
    return [Choice(mission_id, title, f"/missions/{mission_id}-{slugify(title)}") for mission_id, title in rows]


async def editor(session: AsyncSession, code: str, account: SignedIn) -> Editor:
    """For a manager of a validated local authority of the commune; anyone else gets a 403."""
    commune = await _commune(session, code)
    authorities = await _authorities(session, code, account.roles)
    if not authorities:
        raise CityPageRefused(403, "Seuls les gestionnaires d'une collectivité validée de cette commune peuvent "
                                   "rédiger sa page.")
    missions = await _choices(session, [authority.id for authority in authorities])
    return Editor(code, commune.name, authorities, missions, await session.get(CityPage, code))


def _mission_ids(raw: list[str], allowed: list[Choice], errors: dict[str, str]) -> list[int]:
    known = {choice.id for choice in allowed}
    chosen: list[int] = []
    for value in raw:
        if not (value.isascii() and value.isdecimal() and len(value) <= 18) or int(value) not in known:
            errors["missions"] = "Choisissez les missions parmi vos missions en ligne."
            return []
        if int(value) not in chosen:
            chosen.append(int(value))
    if len(chosen) > PROMOTED_MAX:
        errors["missions"] = f"Mettez en avant {PROMOTED_MAX} missions au plus."
    return chosen


async def propose(session: AsyncSession, code: str, account: SignedIn, *, text: object,
                  mission_ids: list[str]) -> None:
    """Sends a new version for validation; the validated one, if any, stays shown until then."""
    page_editor = await editor(session, code, account)
    errors: dict[str, str] = {}
    try:
        body = clean_text(text, "Texte de la page", TEXT_LENGTH, multiline=True)
    except TextRefused as refused:
        errors["text"], body = refused.message, ""
    if not body and "text" not in errors:
        errors["text"] = "Écrivez le texte de la page : quelques paragraphes sur l'engagement dans la commune."
    chosen = _mission_ids(mission_ids, page_editor.missions, errors)
    if errors:
        raise CityPageInvalid(errors)
    # Two first versions sent at once: one row, the later one wins, as for any two edits.
    await session.execute(insert(CityPage).values(commune_code=code, organisation_id=page_editor.authorities[0].id,
                                                  proposed_text="").on_conflict_do_nothing())
    page = await session.get(CityPage, code, with_for_update=True, populate_existing=True)
    assert page is not None
    page.organisation_id = page_editor.authorities[0].id
    page.proposed_text, page.proposed_mission_ids = body.replace("\r\n", "\n"), chosen
    page.proposed_at, page.proposed_by = datetime.now(UTC), account.user_id
    page.review, page.review_reason = "awaiting_validation", None
    await session.flush()


async def queue(session: AsyncSession, roles: Roles) -> list[Waiting]:
    """The pages awaiting validation in the referent's departments, oldest first."""
    query = (
        select(CityPage, Commune, Organisation.name).join(Commune, Commune.code == CityPage.commune_code)
        .join(Organisation, Organisation.id == CityPage.organisation_id)
        .where(CityPage.review == "awaiting_validation").order_by(CityPage.proposed_at)
    )
    if not (roles.admin or roles.national_referent):
        query = query.where(Commune.department_code.in_(roles.referent_departments))
    rows = (await session.execute(query)).all()
    ids = sorted({mission_id for page, _, _ in rows for mission_id in page.proposed_mission_ids})
    titles = dict((await session.execute(select(Mission.id, Mission.title).where(Mission.id.in_(ids)))).all())
    return [Waiting(
        page.commune_code, commune.name, commune.department_code, name, page.proposed_text,
        [Choice(mission_id, titles[mission_id], f"/missions/{mission_id}-{slugify(titles[mission_id])}")
         for mission_id in page.proposed_mission_ids if mission_id in titles],
        page.proposed_at, page.text is not None, version(page), roles.manages(page.organisation_id),
    ) for page, commune, name in rows]


async def decide(session: AsyncSession, code: str, *, action: str, reason: object, read_version: object,
                 account: SignedIn) -> CityPage:
    """Validate or refuse (with a reason) the version awaiting validation, for a referent of the commune's
    department (admins everywhere) who manages none of its authorities."""
    commune = await _commune(session, code)
    page = await session.get(CityPage, code, with_for_update=True)
    if page is None:
        raise CityPageRefused(404, "Cette commune n'a pas de page à valider.")
    roles = account.roles
    if not roles.moderates(commune.department_code):
        raise CityPageRefused(403, "Cette page relève des référent·es d'un autre département : vous ne pouvez pas "
                                   "en décider.")
    if roles.manages(page.organisation_id):
        raise CityPageRefused(403, "Vous gérez la collectivité qui a écrit cette page : une autre personne de la "
                                   "modération doit en décider.")
    if page.review != "awaiting_validation":
        raise CityPageRefused(409, "Cette page n'attend pas de validation : quelqu'un en a déjà décidé.")
    if read_version != version(page):
        raise CityPageRefused(409, "La page a été modifiée depuis que vous l'avez ouverte : relisez-la.")
    try:
        text = clean_text(reason, "Motif", REASON_LENGTH, collapse=True)
    except TextRefused as refused:
        raise CityPageInvalid({"reason": refused.message}) from None
    now = datetime.now(UTC)
    if action == "refuse":
        if not text:
            raise CityPageInvalid({"reason": "Indiquez le motif : la collectivité le lira pour corriger sa page."})
        page.review, page.review_reason = "refused", text
    else:
        page.text, page.mission_ids = page.proposed_text, list(page.proposed_mission_ids)
        page.validated_at, page.validated_by = now, account.user_id
        page.review, page.review_reason = "validated", None
        mark_changed(session)  # the cached commune page shows the new version at the next visit
    page.decided_at = now
    await session.flush()
    return page
