"""The agreement (contrat d'engagement) of each placement: opened when a referent confirms an allocation, with a
snapshot of who and what it binds (`content`) and the SHA-256 of the PDF written from it (`digest`: every party signs
the same document). Each party signs once through its own signed link (app/youth/links.py, `Purpose.AGREEMENT`,
subject `<agreement id>:<party>`); the last signature dates the agreement and mails every party."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from redis import Redis as SyncRedis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import ReferentScope, User
from app.db.after_commit import Clients, after_commit
from app.geo.models import Commune
from app.missions.models import Mission
from app.organisations.models import Organisation, OrganisationManager
from app.volunteers import age
from app.volunteers.models import Volunteer
from app.youth import links, pdf
from app.youth.links import Purpose, YouthLinkExpired, YouthLinkInvalid
from app.youth.models import (
    AgreementParty,
    Cohort,
    ConsentDecision,
    GuardianConsent,
    PlacementStatus,
    YoungPerson,
    YouthAgreement,
    YouthAgreementSignature,
    YouthHours,
    YouthOffer,
    YouthPlacement,
)

PATH = "/snu/convention"
PDF_PATH = "/snu/convention/pdf"
SIGNATURE_DAYS = 60
SIGNED_NAME_LENGTH = 200
PARTY_ORDER = (AgreementParty.YOUNG, AgreementParty.GUARDIAN, AgreementParty.ORGANISATION, AgreementParty.REFERENT)


class AgreementAlreadySigned(Exception):
    """This party signed already."""


def _cut(value: str | None, limit: int) -> str:
    return (value or "")[:limit]


async def _person_name(session: AsyncSession, user_id: int | None) -> tuple[str, str]:
    """(name, e-mail) of an account: its volunteer's or young person's name when it has one, else its address."""
    if user_id is None:
        return "", ""
    user = await session.get(User, user_id)
    if user is None:
        return "", ""
    row = (await session.execute(
        select(Volunteer.first_name, Volunteer.last_name).where(Volunteer.email_normalized == user.email_normalized)
    )).first()
    if row is None:
        row = (await session.execute(
            select(YoungPerson.first_name, YoungPerson.last_name).where(YoungPerson.user_id == user_id)
        )).first()
    name = f"{row[0]} {row[1]}" if row is not None else user.email
    return name, user.email


async def _department_referent(session: AsyncSession, department_code: str) -> int | None:
    return await session.scalar(
        select(ReferentScope.user_id).where(ReferentScope.department_code == department_code)
        .order_by(ReferentScope.id).limit(1)
    )


async def _snapshot(session: AsyncSession, placement_id: int, referent_user_id: int | None, now: datetime
                    ) -> dict[str, Any] | None:
    row = (await session.execute(
        select(YoungPerson, YouthOffer, Mission.title, Organisation, Cohort.name)
        .select_from(YouthPlacement)
        .join(YoungPerson, YoungPerson.id == YouthPlacement.young_person_id)
        .join(YouthOffer, YouthOffer.id == YouthPlacement.offer_id)
        .join(Mission, Mission.id == YouthOffer.mission_id)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .join(Cohort, Cohort.id == YoungPerson.cohort_id)
        .where(YouthPlacement.id == placement_id)
    )).first()
    if row is None:
        return None
    young, offer, title, organisation, cohort_name = row
    communes = dict((await session.execute(
        select(Commune.code, Commune.name).where(Commune.code.in_({young.commune_code, organisation.commune_code}))
    )).tuples().all())
    guardian: dict[str, str] | None = None
    if not age.of_age(age.adult_on(young.birth_date), offer.start_date):
        consent = (await session.execute(
            select(GuardianConsent.guardian_name, GuardianConsent.guardian_email)
            .where(GuardianConsent.young_person_id == young.id,
                   GuardianConsent.decision == ConsentDecision.GIVEN.value)
            .order_by(GuardianConsent.decided_at.desc(), GuardianConsent.id.desc())
            .limit(1)
        )).first()
        if consent is not None:
            guardian = {"name": consent[0], "email": consent[1]}
    tutor_name, tutor_email = await _person_name(session, offer.tutor_user_id)
    if not tutor_email:
        tutor_name, tutor_email = offer.tutor_name or "", offer.tutor_email or ""
    if not tutor_email:
        manager = await session.scalar(
            select(OrganisationManager.user_id).where(OrganisationManager.organisation_id == organisation.id)
            .order_by(OrganisationManager.id).limit(1)
        )
        tutor_name, tutor_email = await _person_name(session, manager)
    if referent_user_id is None:
        referent_user_id = await _department_referent(session, young.department_code)
    referent_name, referent_email = await _person_name(session, referent_user_id)
    young_email = await session.scalar(select(User.email).where(User.id == young.user_id)) or ""
    parties = [AgreementParty.YOUNG.value]
    if guardian is not None:
        parties.append(AgreementParty.GUARDIAN.value)
    parties += [AgreementParty.ORGANISATION.value, AgreementParty.REFERENT.value]
    return {
        "created_at": now.replace(microsecond=0).isoformat(),
        "placement_id": placement_id,
        "cohort_name": cohort_name,
        "young": {"first_name": young.first_name, "last_name": young.last_name, "email": young_email,
                  "birth_date": young.birth_date.isoformat(), "commune": communes.get(young.commune_code, "")},
        "guardian": guardian,
        "organisation": {"name": organisation.name,
                         "address": f"{organisation.address_line}, {organisation.postal_code} "
                                    f"{communes.get(organisation.commune_code, '')}".strip()},
        "mission_title": title,
        "offer": {"start_date": offer.start_date.isoformat(), "end_date": offer.end_date.isoformat(),
                  "hours": offer.hours, "places": offer.places},
        "tutor": {"name": tutor_name, "email": tutor_email},
        "referent": {"name": referent_name, "email": referent_email},
        "parties": parties,
    }


def party_contact(content: dict[str, Any], party: str) -> tuple[str, str]:
    """(name, e-mail) of one party as the snapshot holds it."""
    if party == AgreementParty.YOUNG:
        young = content.get("young") or {}
        return f"{young.get('first_name', '')} {young.get('last_name', '')}".strip(), str(young.get("email", ""))
    key = {AgreementParty.GUARDIAN: "guardian", AgreementParty.ORGANISATION: "tutor",
           AgreementParty.REFERENT: "referent"}.get(AgreementParty(party), "")
    found = content.get(key) or {}
    return str(found.get("name", "")), str(found.get("email", ""))


def digest_of(content: dict[str, Any]) -> str:
    return hashlib.sha256(pdf.agreement_pdf(content)).hexdigest()


async def open_agreements(session: AsyncSession, placement_ids: Sequence[int], *, referent_user_id: int | None
                          ) -> list[int]:
    """In the caller's transaction (flushed, not committed): an agreement for each placement that has none, its
    snapshot, digest and one signature row per party. Returns the agreements' ids, those that existed included, in
    the order of `placement_ids` (a placement that does not exist is skipped)."""
    ids: list[int] = []
    now = datetime.now(UTC)
    for placement_id in dict.fromkeys(placement_ids):
        existing = await session.scalar(select(YouthAgreement.id).where(YouthAgreement.placement_id == placement_id))
        if existing is not None:
            ids.append(existing)
            continue
        content = await _snapshot(session, placement_id, referent_user_id, now)
        if content is None:
            continue
        digest = await asyncio.to_thread(digest_of, content)
        agreement = YouthAgreement(placement_id=placement_id, content=content, digest=digest)
        session.add(agreement)
        await session.flush()
        for party in content["parties"]:
            name, email = party_contact(content, party)
            session.add(YouthAgreementSignature(agreement_id=agreement.id, party=party, name=_cut(name, 200),
                                                email=_cut(email, 254), requested_at=now))
        await session.flush()
        ids.append(agreement.id)
    return ids


def enqueue_signature_requests(rq_connection: SyncRedis, agreement_ids: Sequence[int]) -> None:
    """One mail job per agreement (queues/youth_agreements.py): each unsigned party gets its own signed link."""
    from queues import enqueue  # the web's enqueue helpers, which import no job bodies

    for agreement_id in agreement_ids:
        enqueue.send_youth_agreement_letters(rq_connection, [["request", int(agreement_id)]])


def signature_token(secret: str, agreement_id: int, party: str, expires_at: int) -> str:
    return links.mint(secret, Purpose.AGREEMENT, f"{agreement_id}:{party}", int(expires_at))


def signature_url(base_url: str, secret: str, agreement_id: int, party: str, expires_at: int) -> str:
    return links.url(base_url, PATH, signature_token(secret, agreement_id, party, expires_at))


def pdf_url(base_url: str, token: str) -> str:
    return links.url(base_url, PDF_PATH, token)


def read_signature_link(secret: str, token: object, now: float) -> tuple[int, str]:
    """(agreement id, party) of a genuine, unexpired signature link; raises `YouthLinkInvalid` or `YouthLinkExpired`."""
    link = links.read(secret, Purpose.AGREEMENT, token, now)
    agreement_id, _, party = link.subject.partition(":")
    if not agreement_id.isdecimal() or len(agreement_id) > 18 or party not in set(AgreementParty):
        raise YouthLinkInvalid
    return int(agreement_id), party


@dataclass(frozen=True, slots=True)
class Signature:
    party: str
    name: str
    signed_at: datetime | None
    signed_name: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"party": self.party, "name": self.name, "signed_name": self.signed_name,
                "signed_at": self.signed_at.isoformat() if self.signed_at else None}


@dataclass(frozen=True, slots=True)
class AgreementView:
    agreement_id: int
    placement_id: int
    party: str | None  # whose link opened it; None for the young person's own page
    content: dict[str, Any]
    signatures: list[Signature]
    signed_at: datetime | None
    placement_status: str

    @property
    def signed_by_party(self) -> bool:
        return any(row.party == self.party and row.signed_at is not None for row in self.signatures)

    def document(self) -> bytes:
        """The PDF from the snapshot, with the signatures given so far."""
        return pdf.agreement_pdf(self.content, [row.as_dict() for row in self.signatures])


async def _view(session: AsyncSession, agreement_id: int, party: str | None) -> AgreementView | None:
    row = (await session.execute(
        select(YouthAgreement.id, YouthAgreement.placement_id, YouthAgreement.content, YouthAgreement.signed_at,
               YouthPlacement.status)
        .join(YouthPlacement, YouthPlacement.id == YouthAgreement.placement_id)
        .where(YouthAgreement.id == agreement_id)
    )).first()
    if row is None:
        return None
    signatures = (await session.execute(
        select(YouthAgreementSignature.party, YouthAgreementSignature.name, YouthAgreementSignature.signed_at,
               YouthAgreementSignature.signed_name)
        .where(YouthAgreementSignature.agreement_id == agreement_id)
    )).all()
    rows = sorted((Signature(*signature) for signature in signatures),
                  key=lambda s: PARTY_ORDER.index(AgreementParty(s.party)))
    if party is not None and party not in {signature.party for signature in rows}:
        return None
    return AgreementView(agreement_id=row[0], placement_id=row[1], party=party, content=row[2], signatures=rows,
                         signed_at=row[3], placement_status=row[4])


async def check(session: AsyncSession, *, secret: str, token: object, now: float) -> AgreementView:
    """A genuine link's agreement, for its party. Changes nothing. Raises `YouthLinkInvalid` or `YouthLinkExpired`
    (the agreement or its placement is gone)."""
    agreement_id, party = read_signature_link(secret, token, now)
    view = await _view(session, agreement_id, party)
    if view is None:
        raise YouthLinkExpired
    return view


async def own_agreement(session: AsyncSession, user_id: int) -> AgreementView | None:
    """The signed-in young person's agreement, on their placement that is not cancelled."""
    agreement_id = await session.scalar(
        select(YouthAgreement.id)
        .join(YouthPlacement, YouthPlacement.id == YouthAgreement.placement_id)
        .join(YoungPerson, YoungPerson.id == YouthPlacement.young_person_id)
        .where(YoungPerson.user_id == user_id, YouthPlacement.status != PlacementStatus.CANCELLED)
        .order_by(YouthAgreement.id.desc()).limit(1)
    )
    return None if agreement_id is None else await _view(session, agreement_id, None)


async def sign(session: AsyncSession, *, secret: str, token: object, now: float, signed_name: str) -> bool:
    """Records the link's party's signature, once; the last one dates the agreement and, after commit, mails every
    party. The agreement row is locked first, so two last signatures at once date it once. Returns whether the
    agreement is now fully signed. Raises `YouthLinkInvalid`, `YouthLinkExpired` or `AgreementAlreadySigned`."""
    agreement_id, party = read_signature_link(secret, token, now)
    locked = await session.scalar(
        select(YouthAgreement.id).join(YouthPlacement, YouthPlacement.id == YouthAgreement.placement_id)
        .where(YouthAgreement.id == agreement_id, YouthPlacement.status != PlacementStatus.CANCELLED)
        .with_for_update(of=YouthAgreement)
    )
    if locked is None:
        raise YouthLinkExpired
    signed = await session.scalar(
        update(YouthAgreementSignature)
        .where(YouthAgreementSignature.agreement_id == agreement_id, YouthAgreementSignature.party == party,
               YouthAgreementSignature.signed_at.is_(None))
        .values(signed_at=func.now(), signed_name=_cut(signed_name, SIGNED_NAME_LENGTH))
        .returning(YouthAgreementSignature.party)
    )
    if signed is None:
        exists = await session.scalar(select(YouthAgreementSignature.party).where(
            YouthAgreementSignature.agreement_id == agreement_id, YouthAgreementSignature.party == party))
        if exists is None:
            raise YouthLinkExpired
        raise AgreementAlreadySigned
    unsigned = await session.scalar(
        select(func.count()).select_from(YouthAgreementSignature)
        .where(YouthAgreementSignature.agreement_id == agreement_id, YouthAgreementSignature.signed_at.is_(None))
    )
    if unsigned:
        return False
    dated = await session.scalar(
        update(YouthAgreement).where(YouthAgreement.id == agreement_id, YouthAgreement.signed_at.is_(None))
        .values(signed_at=func.now()).returning(YouthAgreement.id)
    )
    if dated is not None:
        from queues import enqueue

        async def send(clients: Clients) -> None:
            await asyncio.to_thread(enqueue.send_youth_agreement_letters, clients.rq_connection,
                                    [["signed", agreement_id]])

        after_commit(session, send, key=f"youth-agreement-signed:{agreement_id}")
    return True


@dataclass(frozen=True, slots=True)
class AgreementStatus:
    """One placement as the referents' view lists it."""

    placement_id: int
    agreement_id: int | None
    first_name: str
    last_name: str
    mission_title: str
    parties: dict[str, bool]  # party → signed
    signed_at: datetime | None
    hours: Decimal
    status: str


async def agreement_statuses(session: AsyncSession, *, cohort_id: int, department_code: str
                             ) -> list[AgreementStatus]:
    """Every placement (not cancelled) of a cohort's young people of one department: its agreement's signatures,
    the hours declared and its status, by the young person's name."""
    hours = (select(YouthHours.placement_id, func.sum(YouthHours.hours).label("total"))
             .group_by(YouthHours.placement_id).subquery())
    rows = (await session.execute(
        select(YouthPlacement.id, YouthAgreement.id, YoungPerson.first_name, YoungPerson.last_name, Mission.title,
               YouthAgreement.signed_at, func.coalesce(hours.c.total, 0), YouthPlacement.status)
        .join(YoungPerson, YoungPerson.id == YouthPlacement.young_person_id)
        .join(YouthOffer, YouthOffer.id == YouthPlacement.offer_id)
        .join(Mission, Mission.id == YouthOffer.mission_id)
        .outerjoin(YouthAgreement, YouthAgreement.placement_id == YouthPlacement.id)
        .outerjoin(hours, hours.c.placement_id == YouthPlacement.id)
        .where(YoungPerson.cohort_id == cohort_id, YoungPerson.department_code == department_code,
               YouthPlacement.status != PlacementStatus.CANCELLED)
        .order_by(YoungPerson.last_name, YoungPerson.first_name, YouthPlacement.id)
    )).all()
    agreement_ids = [row[1] for row in rows if row[1] is not None]
    parties: dict[int, dict[str, bool]] = {}
    if agreement_ids:
        for agreement_id, party, signed_at in (await session.execute(
            select(YouthAgreementSignature.agreement_id, YouthAgreementSignature.party,
                   YouthAgreementSignature.signed_at)
            .where(YouthAgreementSignature.agreement_id.in_(agreement_ids))
        )).tuples():
            parties.setdefault(agreement_id, {})[party] = signed_at is not None
    return [AgreementStatus(placement_id=row[0], agreement_id=row[1], first_name=row[2], last_name=row[3],
                            mission_title=row[4],
                            parties={p: s for p, s in sorted(parties.get(row[1] or 0, {}).items(),
                                                             key=lambda item: PARTY_ORDER.index(
                                                                 AgreementParty(item[0])))},
                            signed_at=row[5], hours=Decimal(row[6]), status=row[7])
            for row in rows]

