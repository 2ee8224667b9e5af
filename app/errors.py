"""The one place where errors become responses: a structured JSON body for the API, a French page otherwise.

A 500 is a bug; everything a client can cause maps to a 4xx, and an overloaded dependency to a 503 with
Retry-After, so clients back off instead of timing out.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import sentry_sdk
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.accounts import return_path
from app.accounts.guards import RoleRequired, SignInRequired
from app.accounts.service import SignInRateLimited
from app.accounts.sessions import current_account
from app.accounts.tokens import LinkExpired, LinkInvalid
from app.applications.exports import ExportMissing
from app.applications.service import ApplicationsBacklogged, ApplicationsUnavailable
from app.db.errors import Failure, classify, reason, sqlstate
from app.geo.index import PostcodesUnavailable
from app.http import route_template, wants_json
from app.legal.consent import TermsToAccept, acceptance_location
from app.missions.exceptions import DecisionRefused
from app.missions.service import MissionForbidden, MissionNotFound, MissionTransitionRefused
from app.missions.validation import MissionInvalid
from app.organisations.service import (
    IllegalTransition,
    ModerationForbidden,
    OrganisationNotFound,
    OwnOrganisationDecision,
    ReasonRequired,
)
from app.partners.errors import PartnerApiError, failure, is_partner_path, partner_api_error
from app.switches import pages as switch_pages
from app.volunteers.confirmation import ConfirmLinkExpired, ConfirmLinkInvalid
from app.volunteers.service import IdempotencyKeyReused, SignupBacklogged
from app.volunteers.validation import SignupInvalid
from surge.emergencies.page import PageUnavailable
from surge.emergencies.service import (
    EmergencyForbidden,
    EmergencyNotFound,
    EmergencyTransitionRefused,
)

log = logging.getLogger("renfort.errors")

BUSY = "Le service reçoit beaucoup de demandes. Réessayez dans quelques instants : rien n'a été perdu."
# PostgreSQL away or busy: what was just sent is not saved (the queued sign-ups, which need no SQL, still are).
DATABASE_UNAVAILABLE = ("Cette page est momentanément indisponible. Réessayez dans quelques instants : si vous veniez "
                        "d'envoyer un formulaire, il n'a pas été enregistré. Les inscriptions des bénévoles restent "
                        "ouvertes.")


# Where the error page never suggests signing up as a volunteer: organisations', moderators' and personal pages.
NOT_FOR_SIGNUP = ("/organisations", "/inscription/structure", "/invitation", "/moderation", "/coordination",
                  "/administration", "/mon-espace", "/exports", "/modeles-missions")
MAX_REFERRER = 2_000


def _came_from(request: Request[Any, Any, Any]) -> str | None:
    """The page of this site the person came from, as a path only: another site's address is never offered (no
    open redirect), nor a query string (it can carry a token), nor the very page that failed on a GET."""
    raw = request.headers.get("referer", "")
    if not raw or len(raw) > MAX_REFERRER:
        return None
    try:
        parts = urlsplit(raw)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.netloc != request.headers.get("host", ""):
        return None
    path = parts.path
    if not path.startswith("/") or path.startswith("//") or "\\" in path or any(ord(char) < 32 for char in path):
        return None
    if request.method == "GET" and path == request.scope["path"]:
        return None
    return path


def _respond(request: Request[Any, Any, Any], status: int, message: str, headers: dict[str, str] | None = None,
             errors: dict[str, str] | None = None, action: tuple[str, str] | None = None) -> Response[Any]:
    """`action` is the page's way forward, (href, label), shown first on the error page; then the page the person
    came from, and their space (or the home page)."""
    if is_partner_path(request.scope["path"]):
        return failure(request, status, headers)
    if wants_json(request):
        body: dict[str, Any] = {"errors": errors} if errors else {"error": message}
        return Response(body, status_code=status, headers=headers, media_type=MediaType.JSON)
    signed_in = current_account(request) is not None
    back = _came_from(request)
    context = {"status": status, "message": message, "action": action, "errors": errors or {},
               "back": None if action is not None and back == action[0] else back, "signed_in": signed_in,
               "signup": not signed_in and action is None and request.method == "GET"
               and not request.scope["path"].startswith(NOT_FOR_SIGNUP)}
    return Template("error.html", context=context, status_code=status, headers=headers)


def _mission_of(request: Request[Any, Any, Any]) -> tuple[str, str] | None:
    """The way back to the mission the failed request was about, when its path names one."""
    mission_id = request.path_params.get("mission_id")
    return (f"/missions/{mission_id}-x", "Retour à la mission") if isinstance(mission_id, int) else None


def _where(request: Request[Any, Any, Any]) -> str:
    """The route template, never the path: a path can carry a token (an export's, a confirmation's)."""
    return route_template(request.scope) or "unmatched"


def _report(request: Request[Any, Any, Any], error: Exception) -> None:
    """To Sentry, with where it happened (method and path, never the query string, the body or cookies)."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("http.method", request.method)
        scope.set_tag("http.path", _where(request))
        scope.set_transaction_name(f"{request.method} {_where(request)}")
        sentry_sdk.capture_exception(error)


def signup_invalid(request: Request[Any, Any, Any], error: SignupInvalid) -> Response[Any]:
    return _respond(request, 422, "Certaines informations sont à corriger.", errors=error.errors)


def idempotency_key_reused(request: Request[Any, Any, Any], _: IdempotencyKeyReused) -> Response[Any]:
    message = ("Cette clé d'idempotence (en-tête Idempotency-Key) a déjà servi pour une autre inscription : "
               "utilisez une nouvelle clé pour chaque inscription différente.")
    return _respond(request, 422, message, errors={"idempotency_key": message})


def backlogged(
    request: Request[Any, Any, Any],
    _: SignupBacklogged | ApplicationsBacklogged | ApplicationsUnavailable | PageUnavailable,
) -> Response[Any]:
    return _respond(request, 503, BUSY, headers={"Retry-After": "30"})


STARTING = "La plateforme termine sa mise en service. Réessayez dans une minute."
UNDEFINED_TABLE = "42P01"


def postcodes_unavailable(request: Request[Any, Any, Any], _: PostcodesUnavailable) -> Response[Any]:
    """Only on a first deploy, before `release` has loaded the communes: web processes take them up within seconds."""
    message = ("Les inscriptions ouvrent dans quelques instants : la plateforme termine sa mise en service. "
               "Réessayez dans une minute.")
    return _respond(request, 503, message, headers={"Retry-After": "30"})


NEW_LINK = ("/connexion", "Demander un nouveau lien")


def signin_rate_limited(request: Request[Any, Any, Any], error: SignInRateLimited) -> Response[Any]:
    message = "Trop de demandes de connexion depuis votre connexion internet. Réessayez dans une minute."
    return _respond(request, 429, message, headers={"Retry-After": str(error.retry_after)})


def link_invalid(request: Request[Any, Any, Any], _: LinkInvalid) -> Response[Any]:
    message = ("Ce lien de connexion n'est pas valide : il a peut-être été mal copié depuis l'e-mail. "
               "Demandez-en un nouveau.")
    return _respond(request, 400, message, action=NEW_LINK)


def link_expired(request: Request[Any, Any, Any], _: LinkExpired) -> Response[Any]:
    message = ("Ce lien de connexion a expiré ou a déjà servi : chaque lien ne sert qu'une fois et pendant quelques "
               "minutes. Demandez-en un nouveau.")
    return _respond(request, 410, message, action=NEW_LINK)


def confirm_link_invalid(request: Request[Any, Any, Any], _: ConfirmLinkInvalid) -> Response[Any]:
    message = ("Ce lien de confirmation n'est pas valide : il a peut-être été mal copié depuis l'e-mail. "
               "Ouvrez-le à nouveau depuis le message reçu, en entier.")
    return _respond(request, 400, message)


def confirm_link_expired(request: Request[Any, Any, Any], _: ConfirmLinkExpired) -> Response[Any]:
    # The same page whether the link is past its date or its sign-up is gone: nothing tells who signed up.
    message = ("Ce lien de confirmation n'est plus valable : une inscription non confirmée dans les 30 jours est "
               "supprimée. Inscrivez-vous à nouveau pour rejoindre les bénévoles de Renfort.")
    return _respond(request, 410, message, action=("/inscription", "M'inscrire à nouveau"))


# Never offered as a return path: an export's path is its token, which must not travel through the sign-in.
NO_RETURN = ("/exports/",)


def _sign_in_location(request: Request[Any, Any, Any]) -> str:
    """The sign-in page, bringing the person back to the page they opened once signed in (a GET's path only: a
    query string can carry a token, and a form's POST cannot be replayed)."""
    path = quote(request.scope["path"])
    if request.method != "GET" or path.startswith(NO_RETURN) or not return_path.safe(path):
        return "/connexion"
    return "/connexion?" + urlencode({"suite": path})


def sign_in_required(request: Request[Any, Any, Any], _: SignInRequired) -> Response[Any]:
    if wants_json(request):
        return _respond(request, 401, "Vous devez être connecté·e.")
    return Redirect(_sign_in_location(request), status_code=303)


def role_required(request: Request[Any, Any, Any], _: RoleRequired) -> Response[Any]:
    message = ("Cette page est réservée à d'autres rôles que le vôtre. Si vous pensez que c'est une erreur, "
               "contactez la coordination de votre département.")
    return _respond(request, 403, message, action=("/mon-espace", "Revenir à mon espace"))


def terms_to_accept(request: Request[Any, Any, Any], _: TermsToAccept) -> Response[Any]:
    if wants_json(request):
        return _respond(request, 403, "Acceptez d'abord la nouvelle version des conditions d'utilisation.")
    path = quote(request.scope["path"])
    after = path if request.method == "GET" and not path.startswith(NO_RETURN) else ""
    return Redirect(acceptance_location(after), status_code=303)


def organisation_not_found(request: Request[Any, Any, Any], _: OrganisationNotFound) -> Response[Any]:
    return _respond(request, 404, "Cette structure n'existe pas ou n'est pas visible publiquement.")


def decision_refused(request: Request[Any, Any, Any], error: DecisionRefused) -> Response[Any]:
    """This moderation decision is someone else's, and the page says why."""
    return _respond(request, 403, error.message, action=("/mon-espace", "Revenir à mon espace"))


def own_organisation_decision(request: Request[Any, Any, Any], _: OwnOrganisationDecision) -> Response[Any]:
    message = "Vous gérez cette structure : une autre personne de la modération doit en décider."
    return _respond(request, 403, message, action=("/moderation/organisations", "Revenir à la modération"))


def moderation_forbidden(request: Request[Any, Any, Any], _: ModerationForbidden) -> Response[Any]:
    message = "Cette structure relève des référent·es d'un autre département : vous ne pouvez pas la modérer."
    return _respond(request, 403, message, action=("/moderation/organisations", "Revenir à la modération"))


def illegal_transition(request: Request[Any, Any, Any], error: IllegalTransition) -> Response[Any]:
    organisation_id = request.path_params.get("organisation_id")
    if request.scope["path"].startswith("/moderation"):
        action: tuple[str, str] | None = ("/moderation/organisations", "Revenir à la modération")
    else:
        action = (f"/organisations/{organisation_id}-x", "Retour à la structure") if organisation_id else None
    return _respond(request, 409, error.message, action=action)


def reason_required(request: Request[Any, Any, Any], _: ReasonRequired) -> Response[Any]:
    message = "Indiquez le motif : la structure le recevra pour pouvoir corriger sa demande."
    return _respond(request, 422, message, errors={"reason": message},
                    action=("/moderation/organisations", "Revenir à la modération"))


def mission_invalid(request: Request[Any, Any, Any], error: MissionInvalid) -> Response[Any]:
    return _respond(request, 422, "Certaines informations sont à corriger.", errors=error.errors)


def mission_not_found(request: Request[Any, Any, Any], _: MissionNotFound) -> Response[Any]:
    return _respond(request, 404, "Cette mission n'existe pas ou n'est pas en ligne.",
                    action=("/missions", "Chercher une autre mission"))


def emergency_not_found(request: Request[Any, Any, Any], _: EmergencyNotFound) -> Response[Any]:
    return _respond(request, 404, "Cette urgence n'existe pas ou n'est pas encore publiée.", action=("/", "Accueil"))


def emergency_forbidden(request: Request[Any, Any, Any], _: EmergencyForbidden) -> Response[Any]:
    message = "Cette urgence est hors de votre périmètre de coordination."
    return _respond(request, 403, message, action=("/coordination/urgences", "Vos urgences"))


def emergency_transition_refused(request: Request[Any, Any, Any], error: EmergencyTransitionRefused) -> Response[Any]:
    return _respond(request, 409, error.message)


def export_missing(request: Request[Any, Any, Any], _: ExportMissing) -> Response[Any]:
    message = ("Cet export n'existe pas ou plus (il reste disponible une heure) : relancez-le depuis la page d'où "
               "vous l'avez demandé.")
    return _respond(request, 404, message, action=("/mon-espace", "Revenir à mon espace"))


def mission_forbidden(request: Request[Any, Any, Any], _: MissionForbidden) -> Response[Any]:
    message = "Cette mission appartient à une autre structure : vous ne pouvez pas la gérer."
    return _respond(request, 403, message, action=("/mon-espace", "Revenir à mon espace"))


def mission_transition_refused(request: Request[Any, Any, Any], error: MissionTransitionRefused) -> Response[Any]:
    return _respond(request, 409, error.message, action=_mission_of(request))


def redis_unavailable(request: Request[Any, Any, Any], error: RedisError) -> Response[Any]:
    log.warning("Redis unavailable: %s", type(error).__name__)  # warning: the report below is the one event
    _report(request, error)
    if not wants_json(request) and request.scope["path"].rstrip("/") == "/inscription":
        # Sign-ups wait in Redis: the page says that signing up is unavailable for a while, not that it is busy.
        return switch_pages.page(switch_pages.SIGNUP_UNAVAILABLE)
    return _respond(request, 503, BUSY, headers={"Retry-After": "10"})


def pool_exhausted(request: Request[Any, Any, Any], _: PoolTimeout) -> Response[Any]:
    # Every pooled connection stayed busy past the pool's wait (PostgreSQL slow or locked): busy, not a bug.
    log.warning("database pool exhausted on %s %s", request.method, _where(request))
    return _respond(request, 503, BUSY, headers={"Retry-After": "5"})


def database_error(request: Request[Any, Any, Any],
                   error: DBAPIError | ConnectionError | TimeoutError) -> Response[Any]:
    """Classified by its SQLSTATE (app/db/errors.py): unreachable or busy (a deadlock, a lock wait, a restart) is a
    503 to retry; a record refused for its content is the client's; anything else is a bug."""
    failure = classify(error)
    if sqlstate(error) == UNDEFINED_TABLE:
        # A first deploy whose release has not created the tables yet (a PaaS may start web first); reported all the
        # same, since a table missing for good is a bug.
        log.error("a table is missing on %s %s: has the release command run?", request.method, _where(request))
        _report(request, error)
        return _respond(request, 503, STARTING, headers={"Retry-After": "30"})
    if failure is Failure.UNAVAILABLE:
        log.warning("database unavailable on %s %s: %s", request.method, _where(request), reason(error))
        return _respond(request, 503, DATABASE_UNAVAILABLE, headers={"Retry-After": "5"})
    if failure is Failure.REFUSED:
        log.warning("database refused a record on %s %s: %s", request.method, _where(request), reason(error))
        return _respond(request, 409, "Cette demande n'a pas pu être enregistrée telle quelle : vérifiez les "
                                      "informations saisies, ou rechargez la page et réessayez.")
    return server_error(request, error)


def http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    messages = {
        400: "La requête est mal formée.",
        401: "Vous devez vous identifier pour accéder à cette page.",
        403: "Votre session a expiré ou cette action n'est pas autorisée. Rechargez la page et réessayez.",
        404: "Cette page n'existe pas ou plus.",
        405: "Cette méthode n'est pas acceptée ici.",
        413: "La requête est trop volumineuse.",
        429: "Trop de demandes. Réessayez dans une minute.",
    }
    status = error.status_code
    if is_partner_path(request.scope["path"]):
        return failure(request, status, error.headers, error.extra)
    return _respond(request, status, messages.get(status, "La requête n'a pas pu aboutir."), headers=error.headers)


def undecodable(request: Request[Any, Any, Any], _: UnicodeDecodeError) -> Response[Any]:
    # Litestar decodes multipart form fields without catching a wrong encoding: the client's error, not a 500.
    return _respond(request, 400, "La requête est mal formée : le formulaire doit être envoyé en UTF-8.")


def server_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, _where(request))
    _report(request, error)
    return _respond(request, HTTP_500_INTERNAL_SERVER_ERROR, "Une erreur inattendue s'est produite. Réessayez.")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    PartnerApiError: partner_api_error,
    MissionInvalid: mission_invalid,
    SignupInvalid: signup_invalid,
    IdempotencyKeyReused: idempotency_key_reused,
    SignupBacklogged: backlogged,
    ApplicationsUnavailable: backlogged,
    ApplicationsBacklogged: backlogged,
    PageUnavailable: backlogged,
    PostcodesUnavailable: postcodes_unavailable,
    SignInRateLimited: signin_rate_limited,
    LinkInvalid: link_invalid,
    LinkExpired: link_expired,
    ConfirmLinkInvalid: confirm_link_invalid,
    ConfirmLinkExpired: confirm_link_expired,
    SignInRequired: sign_in_required,
    RoleRequired: role_required,
    TermsToAccept: terms_to_accept,
    OrganisationNotFound: organisation_not_found,
    ModerationForbidden: moderation_forbidden,
    OwnOrganisationDecision: own_organisation_decision,
    DecisionRefused: decision_refused,
    IllegalTransition: illegal_transition,
    ReasonRequired: reason_required,
    MissionNotFound: mission_not_found,
    MissionForbidden: mission_forbidden,
    ExportMissing: export_missing,
    EmergencyNotFound: emergency_not_found,
    EmergencyForbidden: emergency_forbidden,
    EmergencyTransitionRefused: emergency_transition_refused,
    MissionTransitionRefused: mission_transition_refused,
    RedisError: redis_unavailable,
    DBAPIError: database_error,
    PoolTimeout: pool_exhausted,
    # A server refusing or dropping connections (not any OSError: a missing template is a bug, not an outage).
    ConnectionError: database_error,
    TimeoutError: database_error,
    NotFoundException: http_error,
    NotAuthorizedException: http_error,
    PermissionDeniedException: http_error,
    HTTPException: http_error,
    UnicodeDecodeError: undecodable,
    Exception: server_error,
}
