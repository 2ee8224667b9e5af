"""Fixed vocabularies shared by sign-ups, missions and emergencies: action domains and availability."""

from __future__ import annotations

# The ten JeVeuxAider action domains: slug used in the API and the database → label shown in French.
DOMAINS: dict[str, str] = {
    "sante-pour-tous": "Santé pour tous",
    "prevention-protection": "Prévention et protection",
    "art-culture": "Art et culture pour tous",
    "sport-pour-tous": "Sport pour tous",
    "cooperation-internationale": "Coopération internationale",
    "solidarite-insertion": "Solidarité et insertion",
    "memoire-citoyennete": "Mémoire et citoyenneté",
    "education-pour-tous": "Éducation pour tous",
    "protection-nature": "Protection de la nature",
    "benevolat-competences": "Bénévolat de compétences",
}

AVAILABILITY: dict[str, str] = {
    "weekdays": "En semaine",
    "weekends": "Le week-end",
    "evenings": "En soirée",
    "holidays": "Pendant les vacances",
    "anytime": "À tout moment",
}
