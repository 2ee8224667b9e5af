"""Typed enqueue helpers: the only way web code and jobs put work on the queue (by dotted path, with explicit
timeouts, TTLs and retries), so the web process never imports job bodies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Retry
from rq.job import Job

from queues.connection import job_queue, sync_redis
from queues.mail_keys import BODY_TTL, MailKeys

DAY = 86_400


def drain_signups(connection: Redis, *, attempt: int = 0) -> Job:
    return job_queue(connection).enqueue(
        "queues.signups.drain_signups",
        attempt=attempt,
        at_front=True,
        job_timeout=600,
        result_ttl=600,
        failure_ttl=7 * DAY,
        description="drain queued sign-ups into PostgreSQL",
    )


def drain_applications(connection: Redis, *, attempt: int = 0) -> Job:
    return job_queue(connection).enqueue(
        "queues.applications.drain_applications",
        attempt=attempt,
        at_front=True,
        job_timeout=600,
        result_ttl=600,
        failure_ttl=7 * DAY,
        description="drain queued application changes into PostgreSQL",
    )


MailItems = list[tuple[int, int, str, str]] | list[tuple[int, int, str, str, str]]
# Every e-mail job is retried on its own when the SMTP server is away; a refused recipient is the outbox's business.
MAIL_RETRY = [10, 30, 60, 120, 300, 600, 1800, 3600]


def _mail_job(connection: Redis, delay: int, function: str, pipeline: Pipeline | None = None, **options: Any) -> Job:
    """Now, or in `delay` seconds through RQ's scheduler (which the worker runs) for an e-mail sent later."""
    queue = job_queue(connection)
    if delay > 0:
        return queue.enqueue_in(timedelta(seconds=delay), function, pipeline=pipeline, **options)
    return queue.enqueue(function, pipeline=pipeline, **options)


def send_application_mails(connection: Redis, items: MailItems, *, delay: int = 0,
                           sender_user_id: int | None = None) -> Job:
    """`items` are (mission id, volunteer id, e-mail kind, idempotency key[, a manager's message]). A message is kept
    in Redis under its key, in the same transaction as the job, so the payload holds ids and keys only.
    `sender_user_id`: the manager who wrote the message, whom answers reach (their address is read when it leaves)."""
    with connection.pipeline() as pipeline:
        job = _mail_job(
            connection,
            delay,
            "queues.mail.send_application_mails",
            pipeline=pipeline,
            items=[[item[0], item[1], item[2], item[3]] for item in items],
            **({} if sender_user_id is None else {"sender_user_id": sender_user_id}),
            job_timeout=600,
            result_ttl=3600,
            failure_ttl=7 * DAY,
            retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
            description="send application e-mails",
        )
        for item in items:
            if len(item) > 4:
                pipeline.set(MailKeys(str(item[3])).body, str(item[4]), ex=BODY_TTL)
        pipeline.execute()
    return job


def send_volunteer_mails(connection: Redis, kind: str, recipients: list[tuple[int, str]], *, delay: int = 0) -> Job:
    """`recipients` are (volunteer id, idempotency key) pairs: ids only, no personal data in the job payload."""
    return _mail_job(
        connection,
        delay,
        "queues.mail.send_volunteer_mails",
        kind=kind,
        recipients=[[volunteer_id, key] for volunteer_id, key in recipients],
        job_timeout=600,
        result_ttl=3600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description=f"send {kind} e-mails",
    )


def send_signin_mail(connection: Redis, key: str, *, delay: int = 0) -> Job:
    """`key` names the request in Redis (address kept there, with the link's lifetime): no personal data here."""
    return _mail_job(
        connection,
        delay,
        "queues.mail.send_signin_mail",
        key=key,
        job_timeout=60,
        result_ttl=600,
        failure_ttl=DAY,
        # A link is worth something for minutes only: retry soon, and not for long.
        retry=Retry(max=3, interval=[5, 20, 60]),
        # Someone is waiting at the screen for it: ahead of the welcome e-mails of a wave.
        at_front=True,
        description="send a sign-in e-mail",
    )


def export_applicants(connection: Redis, token: str, organisation_id: int) -> Job:
    return job_queue(connection).enqueue(
        "queues.exports.export_applicants",
        token=token,
        organisation_id=organisation_id,
        job_timeout=300,
        result_ttl=600,
        failure_ttl=DAY,
        retry=Retry(max=2, interval=[5, 30]),
        description="export a mission's applicants as CSV",
    )


def export_youth(connection: Redis, token: str) -> Job:
    """The cohort and department are in the export's request in Redis (app/applications/exports.py)."""
    return job_queue(connection).enqueue(
        "queues.exports.export_youth",
        token=token,
        job_timeout=300,
        result_ttl=600,
        failure_ttl=DAY,
        retry=Retry(max=2, interval=[5, 30]),
        description="export an SNU cohort's young people of one department as CSV",
    )


def send_youth_reminders(connection: Redis, cohort_id: int, department_code: str) -> Job:
    return job_queue(connection).enqueue(
        "queues.youth_reminders.send_youth_reminders",
        cohort_id=cohort_id,
        department_code=department_code,
        job_timeout=600,
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="send a referent's SNU reminders",
    )


def send_youth_reminder_letters(connection: Redis, items: list[list[object]], *, delay: int = 0) -> Job:
    """`items` are ids, a party and a day (queues/youth_reminders.py): no personal data."""
    return _mail_job(
        connection,
        delay,
        "queues.youth_reminders.send_youth_reminder_letters",
        items=items,
        job_timeout=300,
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="send SNU reminders put off",
    )


def finish_past_missions(connection: Redis) -> Job:
    return job_queue(connection).enqueue(
        "queues.missions.finish_past_missions",
        job_timeout=300,
        result_ttl=600,
        failure_ttl=DAY,
        retry=Retry(max=2, interval=[30, 120]),
        description="finish the missions whose end date has passed",
    )


def purge_unconfirmed(connection: Redis) -> Job:
    return job_queue(connection).enqueue(
        "queues.volunteers.purge_unconfirmed",
        job_timeout=600,
        result_ttl=600,
        failure_ttl=DAY,
        retry=Retry(max=2, interval=[60, 300]),
        description="delete the sign-ups left unconfirmed past their 30 days",
    )


def plan_dispatch(connection: Redis, run_id: int) -> Job:
    return job_queue(connection).enqueue(
        "queues.dispatch.plan_run",
        run_id=run_id,
        job_timeout=600,
        result_ttl=600,
        failure_ttl=7 * DAY,
        description="plan a dispatch run",
    )


def commit_dispatch(connection: Redis, run_id: int) -> Job:
    # Retried: the job is re-runnable (nobody is proposed twice) and a run left `committing` helps nobody.
    return job_queue(connection).enqueue(
        "queues.dispatch.commit_run",
        run_id=run_id,
        job_timeout=900,
        result_ttl=3600,
        failure_ttl=7 * DAY,
        # Long enough to outlast the run's lock (15 min) when a killed worker left it behind.
        retry=Retry(max=7, interval=[10, 30, 60, 120, 300, 600, 900]),
        description="commit a dispatch run: make its proposals",
    )


def withdraw_dispatch(connection: Redis, run_id: int) -> Job:
    # Waits out a commit still running (it raises until the commit lets go of the run).
    return job_queue(connection).enqueue(
        "queues.dispatch.withdraw_run",
        run_id=run_id,
        job_timeout=900,
        result_ttl=3600,
        failure_ttl=7 * DAY,
        retry=Retry(max=10, interval=[10, 30, 60, 120, 300, 600, 900, 900, 900, 900]),
        description="withdraw the proposals of a cancelled dispatch run",
    )


def expire_proposals(connection: Redis) -> Job:
    return job_queue(connection).enqueue(
        "queues.dispatch.expire_proposals",
        job_timeout=300,
        result_ttl=600,
        failure_ttl=DAY,
        retry=Retry(max=2, interval=[30, 120]),
        description="cancel the dispatch proposals past their expiry",
    )


# Above the feed's fetch time limit (PARTNER_FEED_TIMEOUT_SECONDS, 120 s by default) plus parsing and writing
# 20,000 missions; app/partners/imports.py fails a run left "running" past it (a killed worker).
PARTNER_FEED_JOB_TIMEOUT = 1800


def import_partner_feed(connection: Redis, partner_id: int, import_id: int) -> Job:
    # No retry: the run's row says why it failed, and the next schedule tick (or the partner's request) starts a
    # fresh run; a retry would find its row already ended.
    return job_queue(connection).enqueue(
        "queues.partner_feeds.import_partner_feed",
        partner_id=partner_id,
        import_id=import_id,
        job_timeout=PARTNER_FEED_JOB_TIMEOUT,
        result_ttl=3600,
        failure_ttl=7 * DAY,
        description="import a partner's mission feed",
    )


def schedule_partner_feeds(connection: Redis) -> Job:
    # No retry: the next tick (every minute) schedules again.
    return job_queue(connection).enqueue(
        "queues.partner_feeds.schedule_partner_feeds",
        job_timeout=120,
        result_ttl=600,
        failure_ttl=DAY,
        description="start the partner feed imports that are due",
    )


def connect(redis_url: str) -> Redis:
    """The synchronous connection RQ enqueues through."""
    return sync_redis(redis_url)


def queued_jobs(connection: Redis) -> int:
    return job_queue(connection).count


def close_mission_applications(connection: Redis, mission_id: int) -> Job:
    # Re-runnable: an application already closed is left alone and e-mailed once (keyed by application).
    return job_queue(connection).enqueue(
        "queues.mission_closing.close_mission_applications",
        mission_id=mission_id,
        job_timeout=600,
        result_ttl=3600,
        failure_ttl=7 * DAY,
        retry=Retry(max=5, interval=[10, 30, 120, 300, 900]),
        description="close the open applications of a cancelled or finished mission",
    )


def send_invitation_mail(connection: Redis, invitation_id: int, *, delay: int = 0) -> Job:
    """The invitation's token waits in Redis (app/organisations/invitations.py): the payload holds its id only."""
    return _mail_job(
        connection,
        delay,
        "queues.organisation_mail.send_invitation_mail",
        invitation_id=invitation_id,
        job_timeout=60,
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="send an invitation to manage an organisation",
    )


def send_organisation_status_mails(connection: Redis, organisation_id: int, action: str, changed: int,
                                   user_ids: list[int] | None = None, *, delay: int = 0) -> Job:
    """A moderation decision, named by the organisation and the moment (µs) its status changed; `user_ids` narrows
    a deferred run to the managers still owed the e-mail (None: every manager)."""
    return _mail_job(
        connection,
        delay,
        "queues.organisation_mail.send_organisation_status_mails",
        organisation_id=organisation_id,
        action=action,
        changed=changed,
        user_ids=user_ids,
        job_timeout=300,
        result_ttl=3600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="tell an organisation's managers of a moderation decision",
    )


def purge_unclaimed_organisations(connection: Redis) -> Job:
    return job_queue(connection).enqueue(
        "queues.organisations.purge_unclaimed_organisations",
        job_timeout=600,
        result_ttl=600,
        failure_ttl=DAY,
        retry=Retry(max=2, interval=[60, 300]),
        description="delete the organisations registered without an account and never claimed",
    )


def send_mission_status_mails(connection: Redis, mission_id: int, action: str, changed: int,
                              user_ids: list[int] | None = None, *, delay: int = 0) -> Job:
    """A referent's decision on a mission, named by the mission and the moment (µs) its status changed; `user_ids`
    narrows a deferred run to the managers still owed the e-mail (None: every manager)."""
    return _mail_job(
        connection,
        delay,
        "queues.mission_mail.send_mission_status_mails",
        mission_id=mission_id,
        action=action,
        changed=changed,
        user_ids=user_ids,
        job_timeout=300,
        result_ttl=3600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="tell a mission's managers of a moderation decision",
    )


def notify_new_applications(connection: Redis, organisation_id: int, *, at: Any = None) -> Job:
    """Tells an organisation's managers of their new applications now, or schedules the window's digest; `at` (a
    datetime): that digest's run, through RQ's scheduler."""
    options: dict[str, Any] = {
        "organisation_id": organisation_id,
        "job_timeout": 120,
        "result_ttl": 600,
        "failure_ttl": 7 * DAY,
        # Re-runnable: what it told is marked, so a retry tells nothing twice.
        "retry": Retry(max=3, interval=[10, 60, 300]),
        "description": "tell an organisation's managers of their new applications",
    }
    function = "queues.manager_notifications.notify_new_applications"
    if at is not None:
        return job_queue(connection).enqueue_at(at, function, **options)
    return job_queue(connection).enqueue(function, **options)


def send_manager_mails(connection: Redis, kind: str, organisation_id: int, at: int, user_ids: list[int], *,
                       delay: int = 0) -> Job:
    """`kind`: "announced" (new applications) or "reminded"; `at`: the mark (µs) on the applications it tells of;
    `user_ids`: the managers it goes to. Ids only."""
    return _mail_job(
        connection,
        delay,
        "queues.manager_notifications.send_manager_mails",
        kind=kind,
        organisation_id=organisation_id,
        at=at,
        user_ids=list(user_ids),
        job_timeout=300,
        result_ttl=3600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description=f"tell an organisation's managers of applications ({kind})",
    )


def remind_pending_applications(connection: Redis) -> Job:
    return job_queue(connection).enqueue(
        "queues.manager_notifications.remind_pending_applications",
        job_timeout=600,
        result_ttl=600,
        failure_ttl=DAY,
        retry=Retry(max=2, interval=[60, 300]),
        description="remind organisations of the pending applications they left unanswered",
    )


def send_referent_digests(connection: Redis, *, day: str | None = None, user_ids: list[int] | None = None,
                          delay: int = 0) -> Job:
    """The referents' daily digest; `day` (ISO, Paris) and `user_ids` narrow a deferred run to those still owed
    that day's e-mail (None: today's, everyone)."""
    return _mail_job(
        connection,
        delay,
        "queues.referent_digest.send_referent_digests",
        day=day,
        user_ids=user_ids,
        job_timeout=600,
        result_ttl=3600,
        failure_ttl=DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="send the referents what awaits their moderation",
    )


def sweep_mission_closings(connection: Redis) -> Job:
    # Enqueues close_mission_applications again for the ended missions whose closing did not end; re-runnable.
    return job_queue(connection).enqueue(
        "queues.mission_closing.sweep_mission_closings",
        job_timeout=300,
        result_ttl=600,
        failure_ttl=DAY,
        retry=Retry(max=2, interval=[30, 120]),
        description="close again what cancelled or finished missions left open",
    )


def refresh_statistics(connection: Redis) -> Job:
    # No retry: the next scheduled refresh (or a page finding no figures) does it again; the figures stay as they were.
    return job_queue(connection).enqueue(
        "queues.statistics.refresh_statistics",
        job_timeout=300,
        result_ttl=600,
        failure_ttl=DAY,
        description="recompute the public statistics",
    )


def credit_partner_click(connection: Redis, token: str, mission_id: int) -> Job:
    """An application through our flow by a visitor a partner sent: `token` is the click's random id (no personal
    data); idempotent, so retries are safe."""
    return job_queue(connection).enqueue(
        "queues.partner_clicks.credit_inbound_click",
        token=token,
        mission_id=mission_id,
        job_timeout=60,
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=8, interval=[10, 30, 60, 120, 300, 600, 1800, 3600]),  # through a PostgreSQL outage
        description="credit a partner with an application it sent",
    )


def build_data_download(connection: Redis, token: str) -> Job:
    """"Télécharger mes données": `token` names the request in Redis (whose it is); no personal data here."""
    return job_queue(connection).enqueue(
        "queues.privacy.build_data_download",
        token=token,
        job_timeout=300,
        result_ttl=600,
        failure_ttl=DAY,
        retry=Retry(max=2, interval=[5, 30]),
        description="build a person's data download",
    )


def sweep_inactivity(connection: Redis) -> Job:
    return job_queue(connection).enqueue(
        "queues.privacy.sweep_inactivity",
        job_timeout=900,  # within the workers' stop timeout; a cut-off sweep resumes where its batches stopped
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=2, interval=[300, 1800]),
        description="warn the inactive accounts and anonymise those warned",
    )


def send_inactivity_mails(connection: Redis, items: list[list[Any]], *, delay: int = 0) -> Job:
    """`items`: (kind, "v<id>" | "u<id>" | "o<id>", idempotency key, day announced, days left): ids and keys only."""
    return _mail_job(
        connection,
        delay,
        "queues.privacy.send_inactivity_mails",
        items=items,
        job_timeout=600,
        result_ttl=3600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="send the inactivity warnings and suspension notices",
    )


def send_youth_signup_mail(connection: Redis, key: str, *, delay: int = 0) -> Job:
    """`key` names the youth sign-up in Redis (app/youth/service.py): no personal data here."""
    return _mail_job(
        connection,
        delay,
        "queues.youth_mail.send_youth_signup_mail",
        key=key,
        job_timeout=60,
        result_ttl=600,
        failure_ttl=DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        at_front=True,  # someone waits for it to confirm their address
        description="send a youth sign-up e-mail",
    )


def send_youth_invitation_mail(connection: Redis, invitation_id: int, *, delay: int = 0) -> Job:
    return _mail_job(
        connection,
        delay,
        "queues.youth_mail.send_youth_invitation_mail",
        invitation_id=invitation_id,
        job_timeout=60,
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="send an invitation to the SNU youth space",
    )


def send_guardian_consent_mail(connection: Redis, consent_id: int, *, delay: int = 0) -> Job:
    return _mail_job(
        connection,
        delay,
        "queues.youth_mail.send_guardian_consent_mail",
        consent_id=consent_id,
        job_timeout=60,
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="send a guardian's consent request",
    )


def solve_youth_allocation(connection: Redis, allocation_id: int) -> Job:
    # Retried once at once: the job leaves a run that is no longer `running` alone, and marks it failed only on its
    # last attempt.
    return job_queue(connection).enqueue(
        "queues.youth_allocation.solve_youth_allocation",
        allocation_id=allocation_id,
        job_timeout=600,
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=1),
        description="solve an SNU allocation run",
    )


def notify_youth_allocation(connection: Redis, allocation_id: int) -> Job:
    return job_queue(connection).enqueue(
        "queues.youth_allocation.notify_youth_allocation",
        allocation_id=allocation_id,
        job_timeout=600,
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="tell the young people, guardians and tutors of a confirmed SNU allocation",
    )


def send_youth_allocation_letters(connection: Redis, items: list[list[object]], *, delay: int = 0) -> Job:
    """`items` are (kind, row id, allocation id) (queues/youth_allocation.py): no personal data."""
    return _mail_job(
        connection,
        delay,
        "queues.youth_allocation.send_youth_allocation_letters",
        items=items,
        job_timeout=300,
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="send SNU allocation e-mails put off",
    )


def send_youth_offer_decision_mail(connection: Redis, offer_id: int, *, delay: int = 0) -> Job:
    """Tells a MIG offer's tutor its referent's decision; the payload is the offer's id only."""
    return _mail_job(
        connection,
        delay,
        "queues.youth_offers.send_youth_offer_decision_mail",
        offer_id=offer_id,
        job_timeout=60,
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="tell a MIG offer's tutor the referent's decision",
    )


def send_youth_agreement_letters(connection: Redis, items: list[list[object]], *, delay: int = 0) -> Job:
    """`items` are (kind, row id[, party]) (queues/youth_agreements.py): no personal data."""
    return _mail_job(
        connection,
        delay,
        "queues.youth_agreements.send_youth_agreement_letters",
        items=items,
        job_timeout=300,
        result_ttl=600,
        failure_ttl=7 * DAY,
        retry=Retry(max=len(MAIL_RETRY), interval=MAIL_RETRY),
        description="send SNU agreement, hours and certificate e-mails",
    )
