"""Which routes each degraded mode keeps open or closes, as data (patterns: patterns.py).

ESSENTIAL: what maintenance and load shedding never close — signing up and its receipts, the emergency pages,
signing in, coordination and dispatch, this switch page, the probes and static files. ORGANISATION_WRITES: what
`organisations_read_only` closes — every write of the organisations' space (organisations, their managers and
missions, the applications they handle) and of its moderation; their pages still read.
"""

from __future__ import annotations

from app.switches.patterns import READS, WRITES, rule

ESSENTIAL = (
    rule("/inscription", ("GET", "POST"), "the sign-up page"),
    rule("/inscription/merci", READS, "the sign-up's receipt page"),
    rule("/inscription/confirmer", ("GET", "POST"), "confirming a sign-up held back past the per-address limit"),
    rule("/api/v1/volunteers", ("POST",), "the sign-up API"),
    rule("/api/v1/receipts/*", READS, "a sign-up's receipt"),
    rule("/api/v1/communes", READS, "the sign-up form's commune look-up"),
    rule("/", READS, "the home page: the cached list of live emergencies, the way into them"),
    rule("/urgence/**", READS, "the emergency pages"),
    rule("/connexion", ("GET", "POST"), "asking for a sign-in link"),
    rule("/connexion/lien", ("GET", "POST"), "the sign-in link's landing"),
    rule("/mon-espace", READS, "where signing in lands (it reads the session only)"),
    rule("/deconnexion", ("POST",), "signing out"),
    rule("/coordination/**", why="coordination: emergencies and dispatch runs"),
    rule("/mobilisation/*", ("GET", "POST"), "a volunteer answering a dispatch proposal"),
    rule("/administration/interrupteurs/**", why="this page, to turn the switches off again"),
    rule("/ops/**", why="the ops console (dead letters)"),
    rule("/health", READS, "liveness probe"),
    rule("/ready", READS, "readiness probe"),
    rule("/metrics", READS, "Prometheus scrape"),
    rule("/static/**", READS, "stylesheets, scripts and images"),
)

ORGANISATION_WRITES = (
    rule("/organisations/**", WRITES, "organisations, their managers, invitations and new missions"),
    rule("/inscription/structure", WRITES, "signing an organisation up"),
    rule("/invitation", WRITES, "accepting to manage an organisation"),
    rule("/missions/*/modifier", WRITES, "editing a mission"),
    rule("/missions/*/statut/*", WRITES, "publishing, closing or cancelling a mission"),
    rule("/missions/*/dupliquer", WRITES, "duplicating a mission"),
    rule("/missions/*/priorite", WRITES, "flagging a mission as a priority"),
    rule("/missions/*/candidatures/**", WRITES, "deciding on, messaging and exporting applications"),
    rule("/moderation/**", WRITES, "moderating organisations and missions"),
    rule("/modeles-missions/**", WRITES, "mission templates"),
)
