"""The referents' CSV of one cohort's young people in one department: where each one stands, built by a worker
(queues/exports.py) from the dashboard's own list and kept like every export (app/applications/exports.py)."""

from __future__ import annotations

from collections.abc import Sequence

from app.applications import exports
from app.youth.dashboard import YoungRow

COLUMNS = ("Prénom", "Nom", "Statut", "Vœux", "Étape", "Mission", "Vœu obtenu", "Début", "Fin",
           "Signatures attendues", "Heures déclarées")


def to_csv(rows: Sequence[YoungRow]) -> bytes:
    return exports.spreadsheet(COLUMNS, ((
        row.first_name, row.last_name, row.status_label, str(row.choices), row.stage, row.mission_title or "",
        str(row.rank or ""), f"{row.start_date:%d/%m/%Y}" if row.start_date else "",
        f"{row.end_date:%d/%m/%Y}" if row.end_date else "",
        row.waiting_for if row.placement_id is not None and not row.signed else "",
        f"{row.hours:.2f}".replace(".", ","),
    ) for row in rows))


def filename(cohort_name: str, department_code: str) -> str:
    safe = "".join(char if char.isascii() and char.isalnum() else "-" for char in cohort_name).strip("-")[:60]
    return f"snu-{safe or 'cohorte'}-{department_code}.csv"
