"""The SNU agreement and certificate as PDF, written with fpdf2's core fonts. Deterministic: the creation date is the
content's own, so the same content gives the same bytes (and the agreement's digest stays stable). Every text is
brought to latin-1 first (typographic quotes, dashes and ligatures replaced, control characters dropped, overlong
values cut), so no name breaks the document."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime
from typing import Any

import fpdf

FIELD_LIMIT = 300  # the longest value printed (names and titles are far shorter)
REPLACEMENTS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2010": "-", "\u2011": "-", "\u2212": "-",
    "\u2026": "...", "\u0153": "oe", "\u0152": "OE", "\u2022": "-", "\u00a0": " ", "\u202f": " ", "\u2009": " ",
    "\u20ac": "EUR",
}
TITLE = "Contrat d'engagement — Mission d'intérêt général (SNU)"
CERTIFICATE_TITLE = "Attestation de réalisation de la mission d'intérêt général"
PARTY_LABELS = {"young": "Le ou la jeune", "guardian": "Son ou sa représentant·e légal·e",
                "organisation": "La structure d'accueil (tuteur ou tutrice)",
                "referent": "Le ou la référent·e SNU du département"}
ARTICLES = (
    ("Article 1 - Objet",
     "Le présent contrat fixe les conditions dans lesquelles le ou la jeune accomplit la mission d'intérêt "
     "général décrite ci-dessus, au titre du Service national universel."),
    ("Article 2 - Engagements de la structure d'accueil",
     "La structure d'accueil désigne un tuteur ou une tutrice qui accompagne le ou la jeune, veille à sa "
     "sécurité, ne lui confie que des tâches adaptées à son âge et déclare les heures "
     "réalisées."),
    ("Article 3 - Engagements du ou de la jeune",
     "Le ou la jeune s'engage à respecter les horaires convenus, le règlement de la structure et les "
     "consignes de son tuteur ou de sa tutrice, et à prévenir en cas d'absence."),
    ("Article 4 - Gratuité et durée",
     "La mission est bénévole : elle ne donne lieu à aucune rémunération. Elle est "
     "accomplie lorsque 84 heures ont été déclarées ; une attestation est alors délivrée."),
    ("Article 5 - Suivi",
     "Le ou la référent·e SNU du département suit le déroulement de la mission et peut y mettre "
     "fin en cas de manquement grave de l'une des parties."),
)


def clean(value: object, limit: int = FIELD_LIMIT) -> str:
    """`value` as latin-1 text the core fonts print: known typographic characters replaced, other characters
    decomposed to their base letter or dropped, control characters removed, cut to `limit` characters."""
    text = str(value if value is not None else "")
    out: list[str] = []
    for char in text:
        char = REPLACEMENTS.get(char, char)
        if len(char) > 1:
            out.append(char)
            continue
        if char in "\t\n\r":
            out.append(" ")
            continue
        if unicodedata.category(char).startswith("C"):
            continue
        if ord(char) < 256:
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode("latin-1")
        out.append("".join(c for c in base if not unicodedata.category(c).startswith("C")) or "?")
    result = " ".join("".join(out).split())
    return result if len(result) <= limit else result[: limit - 3] + "..."


def _day(value: object) -> str:
    if not value:
        return ""
    try:
        return f"{date.fromisoformat(str(value)[:10]):%d/%m/%Y}"
    except ValueError:
        return clean(value, 40)


def _moment(value: object) -> str:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return clean(value, 40)
    return f"{moment:%d/%m/%Y}"


def _created(value: object) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime(2000, 1, 1, tzinfo=UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _Document(fpdf.FPDF):
    def __init__(self, created: datetime, *, compress: bool) -> None:
        super().__init__(format="A4")
        self.set_compression(compress)
        self.set_creation_date(created)
        self.set_creator("Renfort")
        self.set_producer("Renfort")
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(18, 18, 18)
        self.add_page()

    def title_line(self, text: str) -> None:
        self.set_font("Helvetica", "B", 15)
        self.multi_cell(0, 8, clean(text), align="C", new_x="LMARGIN", new_y="NEXT")
        self.ln(4)

    def heading(self, text: str) -> None:
        self.ln(2)
        self.set_font("Helvetica", "B", 11)
        self.multi_cell(0, 6, clean(text), new_x="LMARGIN", new_y="NEXT")

    def paragraph(self, text: str) -> None:
        self.set_font("Helvetica", "", 10)
        self.multi_cell(0, 5, clean(text, 2_000), new_x="LMARGIN", new_y="NEXT")

    def field(self, label: str, value: object) -> None:
        self.set_font("Helvetica", "", 10)
        self.multi_cell(0, 5, f"{clean(label)} : {clean(value)}", new_x="LMARGIN", new_y="NEXT")


def agreement_pdf(content: dict[str, Any], signatures: list[dict[str, Any]] | None = None, *,
                  compress: bool = True) -> bytes:
    """The agreement written from its snapshot `content` (app/youth/agreements.py); `signatures` (party, name,
    signed_at, signed_name) fill the signature block once parties signed. Without them: the document as opened,
    whose SHA-256 is the agreement's digest."""
    young, offer = content.get("young", {}), content.get("offer", {})
    organisation, tutor = content.get("organisation", {}), content.get("tutor", {})
    referent, guardian = content.get("referent", {}), content.get("guardian")
    document = _Document(_created(content.get("created_at")), compress=compress)
    document.title_line(TITLE)
    document.paragraph(f"Séjour : {clean(content.get('cohort_name'))}")
    document.heading("Les parties")
    document.field("Le ou la jeune", f"{young.get('first_name', '')} {young.get('last_name', '')}")
    document.field("Né·e le", _day(young.get("birth_date")))
    document.field("Commune", young.get("commune", ""))
    if guardian:
        document.field("Représentant·e légal·e", f"{guardian.get('name', '')} "
                       f"({guardian.get('email', '')})")
    document.field("Structure d'accueil", organisation.get("name", ""))
    document.field("Adresse", organisation.get("address", ""))
    document.field("Tuteur ou tutrice", f"{tutor.get('name', '')} ({tutor.get('email', '')})")
    document.field("Référent·e SNU", f"{referent.get('name', '')} ({referent.get('email', '')})")
    document.heading("La mission")
    document.field("Intitulé", content.get("mission_title", ""))
    document.field("Dates", f"du {_day(offer.get('start_date'))} au {_day(offer.get('end_date'))}")
    document.field("Heures prévues", offer.get("hours", ""))
    document.field("Places ouvertes aux jeunes", offer.get("places", ""))
    for heading, text in ARTICLES:
        document.heading(heading)
        document.paragraph(text)
    document.heading("Signatures")
    signed = {str(row.get("party")): row for row in signatures or () if row.get("signed_at")}
    for party in content.get("parties", []):
        label = PARTY_LABELS.get(str(party), str(party))
        row = signed.get(str(party))
        if row is None:
            document.field(label, "en attente de signature")
        else:
            document.field(label, f"signé par {clean(row.get('signed_name'))} le {_moment(row['signed_at'])}")
    return bytes(document.output())


def certificate_pdf(*, first_name: str, last_name: str, mission_title: str, organisation_name: str,
                    cohort_name: str, hours: object, completed_on: date, compress: bool = True) -> bytes:
    """The certificate of a completed mission, dated the day it was completed."""
    document = _Document(datetime(completed_on.year, completed_on.month, completed_on.day, tzinfo=UTC),
                         compress=compress)
    document.title_line(CERTIFICATE_TITLE)
    document.paragraph("Service national universel - " + clean(cohort_name))
    document.ln(4)
    document.paragraph(
        f"Nous attestons que {clean(first_name)} {clean(last_name)} a réalisé la mission d'intérêt "
        f"général « {clean(mission_title)} » au sein de la structure {clean(organisation_name)}, "
        f"pour un total de {clean(hours)} heures.")
    document.ln(4)
    document.field("Date de réalisation", f"{completed_on:%d/%m/%Y}")
    return bytes(document.output())
