"""Full-text mission search (French stemming, accent folding) and the activity taxonomy.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.reference import ACTIVITIES

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Free-text activities written before the taxonomy that plainly name one of its activities; the others are dropped.
SYNONYMS = {
    "accueil": "accueil-information", "information": "accueil-information", "tri": "logistique",
    "rangement": "logistique", "transport": "logistique", "collecte": "collecte-produits",
    "maraudes": "maraude", "soutien scolaire": "soutien-scolaire-formation", "formation": "soutien-scolaire-formation",
    "interpretariat": "traduction", "ecoute": "ecoute-aide-psychologique", "animation": "animation-loisirs",
    "secourisme": "secourisme-securite-civile", "sport": "activites-sportives",
    "jardinage": "amenagement-espaces-naturels", "bricolage": "travaux-manuels", "distributions": "distribution",
}
# The words of the activity slugs, for the tsvector: array_to_string is only STABLE, a generated column needs IMMUTABLE
# (true here: varchar output depends on no setting).
ACTIVITY_WORDS = """
CREATE FUNCTION mission_activity_words(activities varchar[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN replace(coalesce(array_to_string(activities, ' '), ''), '-', ' ')
"""
# Title weighs A, description and activities B; to_tsvector with an explicit regconfig is IMMUTABLE.
SEARCH_VECTOR = (
    "setweight(to_tsvector('fr_unaccent'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('fr_unaccent'::regconfig, coalesce(description, '') || ' ' || "
    "mission_activity_words(activities)), 'B')"
)


def _folded(text: str) -> str:
    """As lower(unaccent(btrim(…))) folds it in SQL."""
    decomposed = unicodedata.normalize("NFD", text.strip().lower())
    return "".join(character for character in decomposed if not unicodedata.combining(character))


def _names() -> dict[str, str]:
    names = {_folded(label): slug for slug, label in ACTIVITIES.items()}
    names.update({slug: slug for slug in ACTIVITIES})
    names.update(SYNONYMS)
    return names


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE TEXT SEARCH CONFIGURATION fr_unaccent (COPY = french)")
    op.execute("ALTER TEXT SEARCH CONFIGURATION fr_unaccent "
               "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, french_stem")
    names = _names()
    for table in ("missions", "mission_templates"):
        op.get_bind().execute(
            sa.text(
                f"UPDATE {table} SET activities = ARRAY("  # noqa: S608 (a constant table name)
                " SELECT known.slug FROM unnest(activities) WITH ORDINALITY AS item(name, position)"
                " JOIN unnest(CAST(:names AS text[]), CAST(:slugs AS text[])) AS known(name, slug)"
                "  ON known.name = lower(unaccent(btrim(item.name)))"
                " GROUP BY known.slug ORDER BY min(item.position))::varchar(80)[]"
                " WHERE activities <> '{}'"
            ).bindparams(
                sa.bindparam("names", list(names), type_=postgresql.ARRAY(sa.Text)),
                sa.bindparam("slugs", list(names.values()), type_=postgresql.ARRAY(sa.Text)),
            )
        )
    op.execute(ACTIVITY_WORDS)
    op.add_column("missions", sa.Column("search_vector", postgresql.TSVECTOR(),
                                        sa.Computed(SEARCH_VECTOR, persisted=True)))
    op.create_index("ix_missions_search_vector", "missions", ["search_vector"], postgresql_using="gin")
    op.create_index("ix_missions_activities", "missions", ["activities"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_missions_activities", table_name="missions")
    op.drop_index("ix_missions_search_vector", table_name="missions")
    op.drop_column("missions", "search_vector")
    op.execute("DROP FUNCTION mission_activity_words(varchar[])")
    op.execute("DROP TEXT SEARCH CONFIGURATION fr_unaccent")
    # The unaccent extension stays: dropping it could break another database object using it.
