"""API Engagement's read API for partners: `GET /v0/mission` (filters, pagination), `GET /v0/mission/{id}`, and our
missions as an XML feed, `GET /v0/mission/feed.xml`; all behind an `x-api-key`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Controller, MediaType, Request, Response, get
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, Operation, Parameter, Schema, SecurityScheme
from litestar.openapi.spec.enums import OpenAPIType

from app.deps import provide_web
from app.partners import export, read
from app.partners.auth import provide_partner
from app.partners.context import PartnerContext
from app.partners.errors import PartnerApiError
from app.partners.wire import ErrorV0, MissionListV0, MissionOneV0, Rendering, list_body

SECURITY_SCHEME = "x-api-key"
NOT_FOUND = "Mission introuvable : elle n'existe pas, n'est plus en ligne ou ne vous est pas diffusée."
MAX_ID = 2**63 - 1
# For the app's OpenAPIConfig: how partners authenticate (the key their administrator received, in a header).
PARTNER_OPENAPI_COMPONENTS = Components(security_schemes={
    SECURITY_SCHEME: SecurityScheme(type="apiKey", name="x-api-key", security_scheme_in="header",
                                    description="La clé d'API de votre plateforme, remise par un administrateur."),
})


def _query(name: str, description: str, *, kind: OpenAPIType = OpenAPIType.STRING, many: bool = False,
           example: str | None = None) -> Parameter:
    schema = Schema(type=kind)
    if many:
        schema = Schema(one_of=[schema, Schema(type=OpenAPIType.ARRAY, items=Schema(type=kind))])
    return Parameter(name=name, param_in="query", required=False, description=description, schema=schema,
                     example=example)


LIST_PARAMETERS = [
    _query("limit", f"Taille de la page : {read.DEFAULT_LIMIT} par défaut, {read.MAX_LIMIT} au plus (au-delà, "
           "prenez le flux XML).", kind=OpenAPIType.INTEGER),
    _query("skip", f"Décalage dans la liste, de 0 à {read.MAX_SKIP}.", kind=OpenAPIType.INTEGER),
    _query("domain", "Domaines d'API Engagement ou les nôtres ; liste séparée par des virgules ou paramètre répété.",
           many=True, example="sante,education"),
    _query("activity", "Activités : nos identifiants ou libellés (ou ceux d'API Engagement).", many=True),
    _query("type", "benevolat (nous ne publions que du bénévolat).", many=True),
    _query("remote", "no, possible, full ou local.", many=True),
    _query("city", "Nom de la commune d'une adresse (casse et accents indifférents).", many=True),
    _query("departmentName", "Nom du département d'une adresse.", many=True),
    _query("departmentCode", "Code du département d'une adresse (69, 2A, 974…).", many=True),
    _query("openToMinors", "true, yes ou 1 ; false, no ou 0."),
    _query("keywords", "Recherche plein texte en français (titre, description, activités)."),
    _query("createdAt", "gt: ou lt: suivi d'une date ISO 8601 (2025-01-31 ou 2025-01-31T09:00:00Z) ; "
           "deux bornes possibles en répétant le paramètre.", example="gt:2025-01-31"),
    _query("startAt", "Comme createdAt, sur la date de début.", example="lt:2025-12-31T00:00:00Z"),
    _query("lat", "Latitude du centre (degrés WGS 84), avec lon.", kind=OpenAPIType.NUMBER),
    _query("lon", "Longitude du centre, avec lat.", kind=OpenAPIType.NUMBER),
    _query("distance", f"Rayon réel autour de lat/lon : 25km, 500m ou 10 (km) ; {read.DEFAULT_DISTANCE_KM:g} km par "
           f"défaut, 0 vaut {read.ZERO_DISTANCE_KM:g} km, {read.MAX_DISTANCE_KM:g} km au plus.", example="25km"),
]


@dataclass
class ListOperation(Operation):
    """The list's query parameters, read by read.parse from the raw query string (repeated values and comma lists),
    documented here since the handler declares none."""

    extra: list[Parameter] = field(default_factory=lambda: LIST_PARAMETERS)

    def __post_init__(self) -> None:
        self.parameters = [*(self.parameters or []), *self.extra]


def _errors(*statuses: int) -> dict[int, ResponseSpec]:
    descriptions = {
        400: "Paramètres invalides (INVALID_QUERY), le message nomme chacun.",
        401: "Clé d'API manquante ou invalide (UNAUTHORIZED).",
        404: "Mission introuvable ou non diffusée (NOT_FOUND).",
        429: "Trop de requêtes (TOO_MANY_REQUESTS), voir Retry-After.",
    }
    return {status: ResponseSpec(ErrorV0, description=descriptions[status]) for status in statuses}


def _rendering(request: Request[Any, Any, Any], places: read.Geography, partner: PartnerContext) -> Rendering:
    web = provide_web(request.app.state)
    return Rendering(places.departments, web.settings.base_url, partner.id)


class PartnerMissionApi(Controller):
    path = "/v0/mission"
    tags = ("Partenaires (API Engagement)",)
    dependencies = {"partner": Provide(provide_partner)}  # noqa: RUF012  (Litestar reads it as a class attribute)
    security = ({SECURITY_SCHEME: []},)

    @get("/", operation_class=ListOperation,
         responses={200: ResponseSpec(MissionListV0, description="La page demandée et le total."),
                    **_errors(400, 401, 429)},
         summary="Les missions qui vous sont diffusées",
         description="Filtres d'API Engagement ; triées par distance si lat/lon sont donnés, sinon par date de début "
                     "décroissante.")
    async def list_missions(self, request: Request[Any, Any, Any], partner: PartnerContext) -> Response[bytes]:
        web = provide_web(request.app.state)
        places = await read.prepared_geography(web.engine)
        query = read.parse(request.query_params, places)
        total, missions = await read.find(web.engine, query, partner, _rendering(request, places, partner),
                                          web.nearby)
        # The missions come encoded (the snapshot keeps them so): the envelope is written around them.
        return Response(list_body(total, query.limit, query.skip, missions), media_type=MediaType.JSON)

    @get("/{mission_id:str}", responses=_errors(401, 404, 429), summary="Une mission qui vous est diffusée")
    async def one_mission(self, request: Request[Any, Any, Any], partner: PartnerContext,
                          mission_id: str) -> MissionOneV0:
        if not (mission_id.isascii() and mission_id.isdecimal()) or not 0 < int(mission_id) <= MAX_ID:
            raise PartnerApiError(404, "NOT_FOUND", NOT_FOUND)
        web = provide_web(request.app.state)
        places = await read.prepared_geography(web.engine)
        mission = await read.find_one(web.engine, int(mission_id), partner, _rendering(request, places, partner))
        if mission is None:
            raise PartnerApiError(404, "NOT_FOUND", NOT_FOUND)
        return MissionOneV0(ok=True, data=mission)

    @get("/feed.xml", media_type=MediaType.XML, responses=_errors(401, 429),
         summary="Flux XML des missions qui vous sont diffusées",
         description="Au format d'import d'API Engagement (<source><mission>…) ; régénéré au plus toutes les "
                     f"{export.TTL_SECONDS // 60} minutes, ou dès qu'une mission change.")
    async def feed(self, request: Request[Any, Any, Any], partner: PartnerContext) -> Response[bytes]:
        web = provide_web(request.app.state)
        places = await read.prepared_geography(web.engine)
        document = await export.feed(web.engine, web.redis, partner, _rendering(request, places, partner))
        return Response(document, media_type="application/xml; charset=utf-8")
