"""API Engagement's vocabularies ↔ ours: its 20 domains onto our 10 (and each of ours back onto one of its), its
activities onto our activity slugs where one obviously fits. The table and its reasons: docs/partner-domains.md."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from app.reference import ACTIVITIES, DOMAINS

# API Engagement domain slug → ours (`api/src/constants/domains.ts`, the 20 of them, exact).
ENGAGEMENT_DOMAINS: dict[str, str] = {
    "animaux": "protection-nature",
    "autre": "solidarite-insertion",
    "batiment-industrie-logistique": "benevolat-competences",
    "benevolat-competences": "benevolat-competences",
    "communication": "benevolat-competences",
    "culture-loisirs": "art-culture",
    "education": "education-pour-tous",
    "emploi": "solidarite-insertion",
    "environnement": "protection-nature",
    "gestion-finance-droit": "benevolat-competences",
    "humanitaire": "cooperation-internationale",
    "memoire-et-citoyennete": "memoire-citoyennete",
    "numerique": "benevolat-competences",
    "prevention-protection": "prevention-protection",
    "recherche": "education-pour-tous",
    "sante": "sante-pour-tous",
    "service-public-defense-securite": "prevention-protection",
    "sport": "sport-pour-tous",
    "solidarite-insertion": "solidarite-insertion",
    "vivre-ensemble": "memoire-citoyennete",
}

# Ours → the one API Engagement slug we publish it under.
OUR_DOMAINS: dict[str, str] = {
    "sante-pour-tous": "sante",
    "prevention-protection": "prevention-protection",
    "art-culture": "culture-loisirs",
    "sport-pour-tous": "sport",
    "cooperation-internationale": "humanitaire",
    "solidarite-insertion": "solidarite-insertion",
    "memoire-citoyennete": "memoire-et-citoyennete",
    "education-pour-tous": "education",
    "protection-nature": "environnement",
    "benevolat-competences": "benevolat-competences",
}

# API Engagement activity slug → (its label, our activity slug or None when none obviously fits).
ENGAGEMENT_ACTIVITIES: dict[str, tuple[str, str | None]] = {
    "accueil-de-public": ("Accueil de public", "accueil-information"),
    "activites-manuelles": ("Activités manuelles", "travaux-manuels"),
    "aide-psychologique": ("Aide psychologique", "ecoute-aide-psychologique"),
    "animation-valorisation": ("Animation, Valorisation", "animation-loisirs"),
    "collecte-de-produits": ("Collecte de produits", "collecte-produits"),
    "comptabilite-finance": ("Comptabilité finance", "gestion-financiere-comptabilite"),
    "documentation-traduction": ("Documentation traduction", "traduction"),
    "ecoute-permanence": ("Écoute permanence", "ecoute-aide-psychologique"),
    "encadrement-d-equipes": ("Encadrement d'équipes", None),
    "enseignement-formation": ("Enseignement formation", "soutien-scolaire-formation"),
    "evenementiel": ("Evenementiel", "evenementiel"),
    "gestion-de-projets": ("Gestion de projets", "gestion-projets"),
    "gestion-recherche-des-partenariats": ("Gestion recherche des partenariats", "recherche-partenariats"),
    "lutte-contre-isolement": ("Lutte contre l'isolement", "lutte-contre-isolement"),
    "mediation-information": ("Médiation, Information", "accueil-information"),
    "mentorat-parrainage": ("Mentorat parrainage", "mentorat-parrainage"),
    "mission-internationale": ("Mission internationale", None),
    "preservation-patrimoine": ("Préservation, Patrimoine", "valorisation-patrimoine"),
    "prevention-sensibilisation": ("Prévention, Sensibilisation", "sensibilisation"),
    "ramassage-dechets": ("Ramassage de déchets", "ramassage-dechets"),
    "responsabilites-associatives": ("Responsabilités associatives", "gouvernance"),
    "sante-soins": ("Santé soins", "medical"),
    "secours-aide": ("Secours, Aide", "secourisme-securite-civile"),
    "sensibilisation": ("Prévention, Sensibilisation", "sensibilisation"),
    "soins-animaux": ("Soins aux animaux", "soins-animaux"),
    "soutien-accompagnement": ("Soutien, Accompagnement", None),
    "soutien-scolaire": ("Soutien scolaire", "soutien-scolaire-formation"),
    "taches-administratives": ("Tâches administratives", "gestion-administrative"),
    "transmission-pedagogie": ("Transmission, Pédagogie", "soutien-scolaire-formation"),
    "vie-citoyenne": ("Vie citoyenne", "vie-citoyenne"),
    "alphabetisation": ("Alphabétisation", "alphabetisation-francais"),
    "animation": ("Animation", "animation-loisirs"),
    "art": ("Art", None),
    "autre": ("Autre", None),
    "bricolage": ("Bricolage", "travaux-manuels"),
    "collecte": ("Collecte", None),
    "communication": ("Communication", "communication"),
    "conseil": ("Conseil", None),
    "distribution": ("Distribution", "distribution"),
    "informatique": ("Informatique", "informatique"),
    "jardinage": ("Jardinage", "amenagement-espaces-naturels"),
    "juridique": ("Juridique", "droit-conseil-juridique"),
    "logistique": ("Logistique", "logistique"),
    "recrutement": ("Recrutement", "ressources-humaines"),
    "secourisme": ("Secourisme", "secourisme-securite-civile"),
    "sport": ("Sport", "activites-sportives"),
    "visites": ("Visites", None),
    "operations-militaires": ("Opérations militaires", None),
    "sciences-humaines-social": ("Sciences humaines et social", None),
    "restauration-hotellerie": ("Restauration, hôtellerie", None),
    "maintenance-technique": ("Maintenance technique", "travaux-manuels"),
    "gestion-ressources-humaines": ("Gestion des ressources humaines", "ressources-humaines"),
    "gestion-entretien-patrimoine": ("Gestion et entretien du patrimoine", "valorisation-patrimoine"),
}

# Ours → the API Engagement label we publish it under: the first of its activities that maps onto ours, else the
# nearest one of its labels.
_NEAREST_LABEL: dict[str, str] = {
    "accompagnement-mobilite": "Soutien, Accompagnement",
    "collecte-fonds": "Collecte",
    "demarches-administratives": "Tâches administratives",
    "dialogue-interculturel": "Mission internationale",
    "maraude": "Secours, Aide",
    "mediation-culturelle": "Animation, Valorisation",
    "services-personne": "Soutien, Accompagnement",
}


def _slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return "-".join(re.findall(r"[a-z0-9]+", plain))


def _our_activity_labels() -> dict[str, str]:
    by_text: dict[str, str] = {}
    for engagement_slug, (label, ours) in ENGAGEMENT_ACTIVITIES.items():
        if ours is not None:
            by_text.setdefault(_slug(engagement_slug), ours)
            by_text.setdefault(_slug(label), ours)
    for ours, label in ACTIVITIES.items():
        by_text[_slug(ours)] = ours
        by_text.setdefault(_slug(label), ours)
    return by_text


_ACTIVITY_BY_TEXT = _our_activity_labels()
_KNOWN_ACTIVITY_TEXT = _ACTIVITY_BY_TEXT.keys() | {_slug(label) for label, _ in ENGAGEMENT_ACTIVITIES.values()}
OUR_ACTIVITY_LABELS: dict[str, str] = {
    ours: next((label for label, mapped in ENGAGEMENT_ACTIVITIES.values() if mapped == ours), None)
    or _NEAREST_LABEL[ours]
    for ours in ACTIVITIES
}


def to_ours(value: str | None) -> str | None:
    """Our domain slug for one of API Engagement's (or one of ours, or either spelled in words: "Mémoire et
    citoyenneté"); None when it is neither."""
    if not value:
        return None
    slug = _slug(value)
    if slug in ENGAGEMENT_DOMAINS:
        return ENGAGEMENT_DOMAINS[slug]
    return slug if slug in DOMAINS else None


def to_engagement(our_slug: str) -> str:
    """The API Engagement domain slug we publish one of ours under (`autre` for a slug we do not know)."""
    return OUR_DOMAINS.get(our_slug, "autre")


def activities_to_ours(values: Iterable[str]) -> list[str]:
    """Our activity slugs for API Engagement's slugs or labels (or ours), in order, without repeats. A value that
    is a comma list is split unless the whole of it is a known label ("Animation, Valorisation"). Unknown ones are
    dropped."""
    found: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue
        slug = _slug(value)
        parts = [slug] if slug in _KNOWN_ACTIVITY_TEXT or "," not in value else [_slug(part) for part in
                                                                                    value.split(",")]
        for part in parts:
            ours = _ACTIVITY_BY_TEXT.get(part)
            if ours is not None and ours not in found:
                found.append(ours)
    return found


def activities_to_engagement(our_slugs: Iterable[str]) -> list[str]:
    """API Engagement's labels for our activity slugs (as its v0 output and filters use labels), without repeats."""
    labels: list[str] = []
    for slug in our_slugs:
        label = OUR_ACTIVITY_LABELS.get(slug)
        if label is not None and label not in labels:
            labels.append(label)
    return labels
