"""Fixed vocabularies shared by sign-ups, missions and emergencies: action domains, activities and availability."""

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

# The JeVeuxAider activity taxonomy (what a volunteer does on a mission), with our own slugs: slug used in the API and
# the database → label shown in French. Slugs are made of the label's words, so the keyword search finds them too.
ACTIVITIES: dict[str, str] = {
    "accueil-information": "Accueil / Information",
    "accompagnement-mobilite": "Accompagnement à la mobilité",
    "activites-sportives": "Activités sportives",
    "sensibilisation": "Actions de sensibilisation",
    "demarches-administratives": "Aide aux démarches administratives",
    "alphabetisation-francais": "Alphabétisation / Apprentissage du français (FLE)",
    "amenagement-espaces-naturels": "Aménagement d'espaces naturels",
    "animation-loisirs": "Animation / Loisirs",
    "collecte-fonds": "Collecte de fonds",
    "collecte-produits": "Collecte de produits",
    "communication": "Communication",
    "dialogue-interculturel": "Dialogue interculturel",
    "distribution": "Distribution",
    "droit-conseil-juridique": "Droit et conseil juridique",
    "ecoute-aide-psychologique": "Écoute / Aide psychologique",
    "evenementiel": "Événementiel",
    "gestion-administrative": "Gestion administrative",
    "gestion-financiere-comptabilite": "Gestion financière / Comptabilité",
    "gestion-projets": "Gestion de projets",
    "ressources-humaines": "Gestion des ressources humaines",
    "gouvernance": "Gouvernance",
    "informatique": "Informatique",
    "logistique": "Logistique",
    "lutte-contre-isolement": "Lutte contre l'isolement",
    "maraude": "Maraude",
    "mediation-culturelle": "Médiation culturelle",
    "medical": "Médical",
    "mentorat-parrainage": "Mentorat et parrainage",
    "ramassage-dechets": "Ramassage de déchets",
    "recherche-partenariats": "Recherche de partenariats",
    "secourisme-securite-civile": "Secourisme et sécurité civile",
    "services-personne": "Services à la personne",
    "soins-animaux": "Soins aux animaux",
    "soutien-scolaire-formation": "Soutien scolaire et formation",
    "traduction": "Traduction",
    "travaux-manuels": "Travaux manuels",
    "valorisation-patrimoine": "Valorisation du patrimoine",
    "vie-citoyenne": "Vie citoyenne",
}
