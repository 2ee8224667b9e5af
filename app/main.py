"""The application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.stores.redis import RedisStore
from litestar.template import TemplateConfig

from app import formats
from app.accounts.controllers import AccountPages, SignInPages
from app.accounts.navigation import header_of, private_when_signed_in
from app.accounts.sessions import session_config
from app.applications.controllers import ApplyPages, ExportPages, VolunteerApplicationPages
from app.campaigns.controllers import CampaignAdministrationPages, CampaignPages, MissionCampaignPages
from app.console.controllers import ConsoleController
from app.deps import provide_db, provide_web
from app.errors import EXCEPTION_HANDLERS
from app.health.controllers import HealthController
from app.legal.controllers import LegalAdministrationPages, LegalPages
from app.metrics.controllers import MetricsController
from app.metrics.http import ObservedRequests
from app.metrics.instruments import start_counting
from app.missions.controllers import MissionApi, MissionPages, OrganisationMissionPages
from app.missions.moderation_pages import MissionModerationPages, MissionTemplatePages
from app.observability import configure_logging, flush_access_log, init_sentry
from app.organisations.controllers import ModerationPages, OrganisationPages
from app.organisations.manager_pages import ManagerPages, MyOrganisationsPages
from app.organisations.onboarding_pages import InvitationPages, OrganisationSignupPages
from app.partners.activity import ActivityApi
from app.partners.admin_pages import PartnerAdministrationPages
from app.partners.auth import PartnerPing, rate_limit_headers
from app.partners.dashboard import PartnerDashboardPage
from app.partners.import_api import PartnerImportApi
from app.partners.redirects import TrackedLinks
from app.partners.v0 import PARTNER_OPENAPI_COMPONENTS, PartnerMissionApi
from app.partners.v2 import PartnerMissionWriteApi
from app.privacy.controllers import DataDownloadPages
from app.reference import ACTIVITIES
from app.rehearsal.controllers import RehearsalController
from app.roles.controllers import RoleAdministrationPages
from app.settings import Settings, get_settings
from app.state import build_state
from app.statistics.controllers import StatisticsPages
from app.switches.controllers import SwitchAdministrationPages
from app.switches.gate import SwitchGate
from app.territories.controllers import CityPageModeration, OrganisationDirectory, TerritoryPages
from app.volunteers.confirmation_pages import EmailConfirmationPages
from app.volunteers.controllers import SignupPages, VolunteerApi
from app.youth.admin_pages import CohortAdministrationPages, ReferentInvitationPages
from app.youth.agreement_pages import AgreementPages, CertificatePages, HoursPages
from app.youth.allocation_pages import AllocationPages
from app.youth.choice_pages import ChoicePages
from app.youth.consent_pages import GuardianConsentPages
from app.youth.controllers import YouthPages
from app.youth.offer_pages import MissionOfferPages, ReferentOfferPages
from app.youth.referent_pages import ReferentPages
from surge.coordination.controllers import CoordinationDashboard
from surge.dispatch.controllers import DispatchPages, ProposalPages
from surge.emergencies.controllers import EmergencyCoordinationPages, EmergencyPublicPages

ROOT = Path(__file__).resolve().parent.parent
# Every request body, unless its route sets its own: Litestar counts the bytes as they arrive (chunked bodies
# included) and answers 413 past it, also while the CSRF middleware reads a form for its token.
MAX_BODY = 65_536


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings.log_level, access_log=settings.access_log)
    init_sentry(settings.sentry_dsn, environment=settings.environment, component="web", release=settings.release)
    start_counting(settings.metrics_dir)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.web = await build_state(settings)
        # Sessions live on the app's Redis, so every web process sees every session.
        app.stores.register("sessions", RedisStore(app.state.web.redis, namespace="renfort:sessions"), True)
        # What start-up built (modules, ORM, templates, the postcode index) lives as long as the process: moved out
        # of the collector's reach, a full collection under load takes ~1 ms instead of stalling a worker for
        # 100–500 ms (measured by loadtests.bench_emergency_page: p99 from ~400–900 ms to ~60 ms at load 5).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.web.close()
            flush_access_log()  # the last lines, buffered for up to 0.2 s

    static = [create_static_files_router(path="/static", directories=[ROOT / "templates" / "static"])]

    def template_globals(engine: JinjaTemplateEngine) -> None:
        formats.register(engine.engine)
        engine.engine.globals["header_of"] = header_of
        engine.engine.globals["ACTIVITIES"] = ACTIVITIES  # slug → label, for every page that lists activities

    secure = settings.base_url.startswith("https://")
    app = Litestar(
        route_handlers=[
            EmergencyPublicPages, EmergencyCoordinationPages, VolunteerApi, SignupPages, SignInPages, AccountPages,
            OrganisationDirectory, TerritoryPages, CityPageModeration,
            OrganisationPages, ModerationPages, OrganisationSignupPages, InvitationPages, ManagerPages,
            MyOrganisationsPages, CoordinationDashboard, RoleAdministrationPages, SwitchAdministrationPages,
            MissionApi, MissionPages, OrganisationMissionPages, MissionModerationPages, MissionTemplatePages,
            ApplyPages, VolunteerApplicationPages, ExportPages, DataDownloadPages,
            HealthController, MetricsController, ConsoleController, RehearsalController, DispatchPages, ProposalPages,
            StatisticsPages, LegalPages, LegalAdministrationPages,
            EmailConfirmationPages, CampaignPages, CampaignAdministrationPages, MissionCampaignPages, *static,
            PartnerAdministrationPages, PartnerPing, PartnerImportApi,
            TrackedLinks, ActivityApi, PartnerDashboardPage, PartnerMissionApi, PartnerMissionWriteApi,
            CohortAdministrationPages, ReferentInvitationPages, YouthPages, GuardianConsentPages, ReferentPages,
            AllocationPages, MissionOfferPages, ReferentOfferPages, ChoicePages,
            AgreementPages, HoursPages, CertificatePages,
        ],
        dependencies={"web": Provide(provide_web, sync_to_thread=False), "db": Provide(provide_db)},
        # The switch gate first: a closed path costs no session, CSRF or handler work.
        middleware=[SwitchGate, session_config(secure=secure, idle_days=settings.session_idle_days).middleware],
        lifespan=[lifespan],
        before_send=[private_when_signed_in, rate_limit_headers],
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=TemplateConfig(
            directory=ROOT / "templates", engine=JinjaTemplateEngine, engine_callback=template_globals
        ),
        csrf_config=CSRFConfig(
            secret=settings.secret_key.reveal(),
            # The API never authenticates with cookies, nor do the partners' routes (an `x-api-key`, or a public
            # tracked link); the surge's public pages carry no form that posts. Anchored: Litestar searches the whole
            # path, so "/api/" would also exempt /coordination/urgences/api/….
            exclude=["^/api/", "^/$", "^/urgence/", "^/v0/", "^/v2/", "^/r/"],
            cookie_secure=secure,
            cookie_samesite="lax",
        ),
        openapi_config=OpenAPIConfig(title="Renfort API", version="1", path="/api/schema",
                                     components=PARTNER_OPENAPI_COMPONENTS),
        request_max_body_size=MAX_BODY,
        # Logging is configure_logging's (JSON, above): Litestar's default config would replace the root handler.
        logging_config=None,
        debug=False,
    )
    # Outside the router (unlike `middleware`), so unmatched paths are counted and logged too.
    app.asgi_handler = ObservedRequests(app.asgi_handler)
    return app
