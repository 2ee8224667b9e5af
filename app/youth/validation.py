"""Reading the youth space's forms: a cohort (administrators) and a young person's details (sign-up, invitation),
with one clear French message per field. Names, e-mail and place follow the volunteers' rules
(app/volunteers/validation.py); the ages are the SNU's: 15 to 25 on the day the cohort's missions start."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.geo.index import PostcodeIndex
from app.text_rules import TextFields, TextRefused
from app.volunteers.validation import NAME, _name, _place, normalize_email, parse_email
from app.youth.models import Cohort

MINIMUM_AGE, MAXIMUM_AGE, MAJORITY = 15, 25, 18
NAME_LENGTH, COHORT_NAME_LENGTH, GUARDIAN_NAME_LENGTH = 100, 120, 200
DATE_LENGTH, DEADLINES_LENGTH, MAX_DEADLINES = 32, 4_000, 120
DEPARTMENT = re.compile(r"^(\d{2,3}|2[AB])$")
FRENCH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


class YouthInvalid(Exception):
    """Raised with a field → French message mapping; the values themselves never go into the exception."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(sorted(errors)))
        self.errors = errors


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def is_minor(birth_date: date, day: date) -> bool:
    return age_on(birth_date, day) < MAJORITY


def _date(fields: TextFields, field: str, label: str, errors: dict[str, str], *, required: bool = True
          ) -> date | None:
    """A date as a date field sends it (2027-03-15) or as typed in French (15/03/2027)."""
    text = fields.text(field, label, DATE_LENGTH)
    if field in fields.refused:
        return None
    if not text:
        if required:
            errors[field] = f"Indiquez la date : {label.lower()}."
        return None
    french = FRENCH_DATE.match(text)
    try:
        return date(int(french[3]), int(french[2]), int(french[1])) if french else date.fromisoformat(text)
    except ValueError:
        errors[field] = f"« {label} » n'est pas une date valide : écrivez-la sous la forme 15/03/2027."
        return None


def checked(raw: Any) -> bool:
    return raw in ("1", "on", "true", True)


@dataclass(frozen=True, slots=True)
class ValidCohort:
    name: str
    stay_start: date
    stay_end: date
    missions_start: date
    missions_end: date
    open_for_signup: bool
    deadlines: dict[str, date]  # department code → last day to choose


def _deadlines(fields: TextFields, errors: dict[str, str]) -> dict[str, date]:
    """One line per department: its code and its date, e.g. `69 : 15/03/2027`."""
    text = fields.text("deadlines", "Dates limites de choix", DEADLINES_LENGTH, multiline=True)
    found: dict[str, date] = {}
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_DEADLINES:
        errors["deadlines"] = f"Indiquez au plus {MAX_DEADLINES} départements."
        return {}
    for number, line in enumerate(lines, 1):
        parts = [part for part in re.split(r"[\s:;,]+", line) if part]
        code = parts[0].upper().zfill(2) if parts else ""
        day: date | None = None
        if len(parts) == 2:
            french = FRENCH_DATE.match(parts[1])
            try:
                day = date(int(french[3]), int(french[2]), int(french[1])) if french else date.fromisoformat(parts[1])
            except ValueError:
                day = None
        if not DEPARTMENT.match(code) or day is None:
            errors["deadlines"] = (f"Ligne {number} : écrivez le numéro du département puis la date, par exemple "
                                   "« 69 : 15/03/2027 ».")
            return {}
        if code in found:
            errors["deadlines"] = f"Le département {code} figure deux fois : gardez une seule date."
            return {}
        found[code] = day
    return found


def validate_cohort(data: dict[str, Any]) -> ValidCohort:
    """Checks every field (the department codes against the geography are the service's); raises `YouthInvalid`."""
    errors: dict[str, str] = {}
    fields = TextFields(data)
    name = fields.text("name", "Nom de la cohorte", COHORT_NAME_LENGTH, collapse=True)
    if not name and "name" not in fields.refused:
        errors["name"] = "Indiquez le nom de la cohorte, par exemple « Séjour de février 2027 »."
    stay_start = _date(fields, "stay_start", "Début du séjour de cohésion", errors)
    stay_end = _date(fields, "stay_end", "Fin du séjour de cohésion", errors)
    missions_start = _date(fields, "missions_start", "Début de la période des missions", errors)
    missions_end = _date(fields, "missions_end", "Fin de la période des missions", errors)
    deadlines = _deadlines(fields, errors)
    if stay_start and stay_end and stay_end < stay_start:
        errors["stay_end"] = "La fin du séjour de cohésion ne peut pas précéder son début."
    if missions_start and missions_end and missions_end < missions_start:
        errors["missions_end"] = "La fin de la période des missions ne peut pas précéder son début."
    if stay_end and missions_start and missions_start < stay_end and "missions_end" not in errors:
        errors["missions_start"] = "Les missions commencent après le séjour de cohésion : choisissez une date de " \
                                   "début postérieure à la fin du séjour."
    if missions_end and deadlines and "deadlines" not in errors:
        late = sorted(code for code, day in deadlines.items() if day > missions_end)
        if late:
            errors["deadlines"] = (f"La date limite de choix du ou des départements {', '.join(late)} tombe après la "
                                   "fin de la période des missions.")
    errors.update(fields.refused)
    if errors or not (stay_start and stay_end and missions_start and missions_end):
        raise YouthInvalid(errors)
    return ValidCohort(name=name, stay_start=stay_start, stay_end=stay_end, missions_start=missions_start,
                       missions_end=missions_end, open_for_signup=checked(data.get("open_for_signup")),
                       deadlines=deadlines)


@dataclass(frozen=True, slots=True)
class ValidYouth:
    first_name: str
    last_name: str
    birth_date: date
    postal_code: str
    commune_code: str
    email: str = ""  # empty when the invitation gave the address
    email_normalized: str = ""
    guardian_name: str | None = None  # minors only
    guardian_email: str | None = None


def age_error(birth_date: date, cohort: Cohort) -> str | None:
    """The SNU's age rule, on the day the cohort's missions start."""
    age = age_on(birth_date, cohort.missions_start)
    when = f"{cohort.missions_start:%d/%m/%Y}"
    if age < MINIMUM_AGE:
        return (f"Il faut avoir au moins {MINIMUM_AGE} ans le {when}, quand commencent les missions de cette cohorte. "
                "Vous pourrez vous inscrire à une cohorte suivante.")
    if age > MAXIMUM_AGE:
        return f"Les missions du SNU sont ouvertes jusqu'à {MAXIMUM_AGE} ans : vous aurez plus de {MAXIMUM_AGE} ans " \
               f"le {when}. Vous pouvez devenir bénévole sur Renfort."
    return None


def _normalized(email: str | None) -> str:
    """The invited address, normalised as the guardian's is before they are compared."""
    return normalize_email(email) if email else ""


def validate_youth(data: dict[str, Any], index: PostcodeIndex, cohort: Cohort, today: date, *,
                   email: str | None = None) -> ValidYouth:
    """A young person's details; `email`: the invited address (the form then has no e-mail field). Raises
    `YouthInvalid` with every problem at once."""
    errors: dict[str, str] = {}
    fields = TextFields(data)
    first_name = _name(fields, "first_name", errors)
    last_name = _name(fields, "last_name", errors)
    typed = normalized = ""
    if email is None:
        try:
            typed, normalized = parse_email(data.get("email"))
        except TextRefused as refused:
            errors["email"] = refused.message
    birth_date = _date(fields, "birth_date", "Date de naissance", errors)
    if birth_date is not None:
        if birth_date > today:
            errors["birth_date"] = "La date de naissance ne peut pas être dans le futur."
        elif (problem := age_error(birth_date, cohort)) is not None:
            errors["birth_date"] = problem
    postal_code, commune_code = _place(data.get("postal_code"), data.get("commune_code"), index, errors)
    guardian_name = guardian_email = None
    if birth_date is not None and is_minor(birth_date, today):
        guardian_name = fields.text("guardian_name", "Nom du représentant légal", GUARDIAN_NAME_LENGTH, collapse=True)
        if not guardian_name and "guardian_name" not in fields.refused:
            errors["guardian_name"] = "Vous êtes mineur·e : indiquez le prénom et le nom de votre représentant·e " \
                                      "légal·e (parent ou tuteur)."
        elif guardian_name and not NAME.match(guardian_name):
            # The name goes into the e-mail sent to the address typed next to it: a name, never a link or a message.
            errors["guardian_name"] = "Pour le nom de votre représentant·e légal·e, utilisez uniquement des lettres, " \
                                      "des espaces, des tirets ou des apostrophes."
        try:
            _, guardian_email = parse_email(data.get("guardian_email"))
        except TextRefused as refused:
            errors["guardian_email"] = ("Vous êtes mineur·e : indiquez l'adresse e-mail de votre représentant·e "
                                        "légal·e." if refused.reason == "blank" else refused.message)
        own = normalized or _normalized(email)
        if guardian_email and guardian_email == own:
            errors["guardian_email"] = "L'adresse de votre représentant·e légal·e doit être différente de la vôtre : " \
                                       "c'est à lui ou à elle que nous demandons son accord."
    errors.update(fields.refused)
    if errors or birth_date is None:
        raise YouthInvalid(errors)
    return ValidYouth(first_name=first_name, last_name=last_name, birth_date=birth_date, postal_code=postal_code,
                      commune_code=commune_code, email=typed, email_normalized=normalized,
                      guardian_name=guardian_name or None, guardian_email=guardian_email)

