"""Storage tables (SQLAlchemy Core). Separate from domain types and wire schemas on purpose.

Personal data columns end in `_enc` and hold AES-GCM ciphertext (see adapters/crypto.py).
Money columns hold integer minor units; rates are decimal strings (exact) plus the scaled integer.
Dates are `Date`, instants are timezone-aware UTC `DateTime`.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only treats INTEGER PRIMARY KEY as an alias of rowid (autoincrement); BigInteger elsewhere.
Key = BigInteger().with_variant(Integer(), "sqlite")

product = Table(
    "product",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("conventions", JSON, nullable=False),
    Column("description", Text),
)

borrower = Table(
    "borrower",
    metadata,
    Column("borrower_key", Key, primary_key=True, autoincrement=True),
    Column("borrower_id", String(64), nullable=False, unique=True),
    Column("name_enc", LargeBinary, nullable=False),
    Column("national_id_enc", LargeBinary, nullable=False),
    Column("birth_date", Date),
    Column("language", String(16), nullable=False),
    Column("flags", String(256), nullable=False, default=""),  # comma-separated, sorted
    Column("region", String(64)),
)

contact_point = Table(
    "contact_point",
    metadata,
    Column("contact_key", Key, primary_key=True, autoincrement=True),
    Column("contact_id", String(64), nullable=False, unique=True),
    Column("borrower_key", ForeignKey("borrower.borrower_key"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # phone | email | address | app
    Column("owner", String(16), nullable=False),  # borrower | spouse | family | emergency | employer | guarantor
    Column("value_enc", LargeBinary, nullable=False),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("time_zone", String(64), nullable=False),
    Column("valid", Boolean, nullable=False),
    Column("consent", Boolean, nullable=False),
)

loan = Table(
    "loan",
    metadata,
    Column("loan_key", Key, primary_key=True, autoincrement=True),
    Column("loan_id", String(64), nullable=False, unique=True),
    Column("borrower_key", ForeignKey("borrower.borrower_key"), nullable=False, index=True),
    Column("product", ForeignKey("product.code"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("principal", BigInteger, nullable=False),
    Column("annual_rate", BigInteger, nullable=False),  # scaled by RATE_SCALE
    Column("penalty_rate", BigInteger, nullable=False),  # scaled by RATE_SCALE
    Column("term", Integer, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("method", String(32), nullable=False),
)

instalment = Table(
    "instalment",
    metadata,
    Column("loan_key", ForeignKey("loan.loan_key"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("due_date", Date, nullable=False),
    Column("principal", BigInteger, nullable=False),
    Column("interest", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
)

payment = Table(
    "payment",
    metadata,
    Column("payment_key", Key, primary_key=True, autoincrement=True),
    Column("payment_id", String(64), nullable=False, unique=True),
    Column("loan_key", ForeignKey("loan.loan_key"), nullable=False, index=True),
    Column("value_date", Date, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reverses_payment_key", ForeignKey("payment.payment_key"), unique=True),
    Column("booked_at", DateTime(timezone=True), nullable=False),
)

hold = Table(
    "hold",
    metadata,
    Column("hold_key", Key, primary_key=True, autoincrement=True),
    Column("hold_id", String(64), nullable=False, unique=True),
    Column("borrower_key", ForeignKey("borrower.borrower_key"), nullable=False, index=True),
    Column("loan_key", ForeignKey("loan.loan_key")),
    Column("kind", String(16), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("pauses_clock", Boolean, nullable=False),
    Column("pauses_outreach", Boolean, nullable=False),
)

import_run = Table(
    "import_run",
    metadata,
    Column("import_key", Key, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("rejects_path", Text),
)

rejected_row = Table(
    "rejected_row",
    metadata,
    Column("rejected_key", Key, primary_key=True, autoincrement=True),
    Column("import_key", ForeignKey("import_run.import_key"), nullable=False, index=True),
    Column("file", Text, nullable=False),
    Column("row", Integer, nullable=False),
    Column("field", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", JSON, nullable=False),
)

collection_case = Table(
    "collection_case",
    metadata,
    Column("case_key", Key, primary_key=True, autoincrement=True),
    Column("loan_key", ForeignKey("loan.loan_key"), nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("closed_on", Date),
    Column("close_reason", String(32)),  # cured | paid_off
    UniqueConstraint("loan_key", "opened_on"),
    Index("ix_case_open", "loan_key", "closed_on"),
)

cycle_run = Table(
    "cycle_run",
    metadata,
    Column("run_key", Key, primary_key=True, autoincrement=True),
    Column("as_of", Date, nullable=False, index=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("replay", Boolean, nullable=False),
    Column("strategy_digest", String(64), nullable=False),
    Column("summary", JSON, nullable=False),
)

delinquency_snapshot = Table(
    "delinquency_snapshot",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("loan_key", ForeignKey("loan.loan_key"), primary_key=True),
    Column("days_past_due", Integer, nullable=False),
    Column("bucket", String(16), nullable=False),
    Column("transition", String(16), nullable=False),
    Column("overdue_total", BigInteger, nullable=False),
    Column("outstanding_total", BigInteger, nullable=False),
)

proposed_action = Table(
    "proposed_action",
    metadata,
    Column("action_key", Key, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(160), nullable=False, unique=True),  # as_of:loan_id:step
    Column("as_of", Date, nullable=False, index=True),
    Column("loan_key", ForeignKey("loan.loan_key"), nullable=False),
    Column("case_key", ForeignKey("collection_case.case_key")),
    Column("segment", String(64), nullable=False),
    Column("ladder", String(64), nullable=False),
    Column("step", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("template", String(64)),
    Column("priority", Integer, nullable=False),
    Column("arm", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("compliance_status", String(16), nullable=False),  # pending | allowed | rescheduled | blocked
    Column("compliance_reason", Text, nullable=False),
    Column("compliance_rules", Text),  # comma-separated ids of the blocking rules
    Column("rulebook_version", String(32)),  # the rulebook that decided
    Column("scheduled_at", DateTime(timezone=True)),  # allowed: the planned moment; rescheduled: the next allowed one
    Index("ix_action_loan_step", "loan_key", "step", "as_of"),
)

audit_entry = Table(
    "audit_entry",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("origin", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("entity_id", String(160), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),  # canonical JSON, exactly as hashed
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1: the chain's single head row, locked on append
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# --- Reaching the debtor (issue 4) ------------------------------------------------------------------

# Every contact that happened: dispatched messages and their delivery receipts, call outcomes, visit
# outcomes, letters posted, contacts the debtor started. Append-only; the compliance history
# (frequency caps, conversations) is read from here. `event_id` makes recording idempotent.
contact_event = Table(
    "contact_event",
    metadata,
    Column("event_key", Key, primary_key=True, autoincrement=True),
    Column("event_id", String(160), nullable=False, unique=True),
    Column("borrower_key", ForeignKey("borrower.borrower_key"), nullable=False),
    Column("loan_key", ForeignKey("loan.loan_key")),
    Column("action_key", ForeignKey("proposed_action.action_key")),
    Column("at", DateTime(timezone=True), nullable=False),  # when it happened (UTC)
    Column("channel", String(16), nullable=False),  # compliance channel: call sms email letter app_push visit
    Column("counterpart", String(24), nullable=False),  # debtor spouse family emergency_contact employer …
    Column("address", String(64)),  # "cp:<contact_key>": the number or address used
    Column("outcome", String(24), nullable=False),  # compliance outcome: conversation connected no_answer …
    Column("initiated_by", String(16), nullable=False),  # collector | debtor | counterpart
    Column("actor_kind", String(24), nullable=False),  # lender | agency | debt_collector
    Column("agent", String(64)),  # who made it (agent id, "dispatcher")
    Column("provider_message_id", String(128)),
    Column("details", JSON, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_contact_event_borrower_at", "borrower_key", "at"),
)

# Short signed codes printed on every notice, message, call script and visitor badge, checked on /verify.
# Only a digest of the code is stored: a copy of the database does not hand out working codes.
verification_code = Table(
    "verification_code",
    metadata,
    Column("code_key", Key, primary_key=True, autoincrement=True),
    Column("code_digest", String(64), nullable=False, unique=True),  # SHA-256 of the normalised code
    Column("purpose", String(16), nullable=False),  # message | notice | call | visit
    Column("channel", String(16), nullable=False),
    Column("borrower_key", ForeignKey("borrower.borrower_key"), nullable=False, index=True),
    Column("loan_key", ForeignKey("loan.loan_key")),
    Column("action_key", ForeignKey("proposed_action.action_key")),
    Column("reference", String(64)),  # what else it is tied to, e.g. "visit:V-2026-000123"
    Column("lender", String(128), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

# --- Door visits (issue 4, point 5; owner: visits) ----------------------------------------------------

# Field staff who may be sent on door visits. The name is personal data (encrypted); the badge number is
# printed on the pre-visit notice and shown on /verify so a debtor can check who is at the door.
staff = Table(
    "staff",
    metadata,
    Column("staff_key", Key, primary_key=True, autoincrement=True),
    Column("staff_id", String(32), nullable=False, unique=True),
    Column("name_enc", LargeBinary, nullable=False),
    Column("badge", String(32), nullable=False, unique=True),
    Column("region", String(64), nullable=False),  # ISO 3166-2, as borrower.region: where they work
    Column("active", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Training certifications; one that has expired on a visit's day does not count (HOUSE.VISIT.CERTIFIED).
staff_certification = Table(
    "staff_certification",
    metadata,
    Column("certification_key", Key, primary_key=True, autoincrement=True),
    Column("staff_key", ForeignKey("staff.staff_key"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),  # field_visit
    Column("issued_on", Date, nullable=False),
    Column("expires_on", Date, nullable=False),  # last day it is valid
    UniqueConstraint("staff_key", "kind", "issued_on"),
)

# A supervisor's approval to visit a vulnerable debtor (HOUSE.VULNERABLE), audited when granted.
visit_approval = Table(
    "visit_approval",
    metadata,
    Column("approval_key", Key, primary_key=True, autoincrement=True),
    Column("borrower_key", ForeignKey("borrower.borrower_key"), nullable=False, index=True),
    Column("approved_by", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("approved_at", DateTime(timezone=True), nullable=False),
    Column("valid_until", Date, nullable=False),
)

# One door visit, planned from an allowed `visit` action of the cycle, through notice, schedule, check-in,
# check-out and outcome. `status` is the last step reached; every step is also an audit entry.
visit = Table(
    "visit",
    metadata,
    Column("visit_key", Key, primary_key=True, autoincrement=True),
    Column("visit_id", String(32), nullable=False, unique=True),  # "V-<year>-<action_key>", printed on the notice
    Column("action_key", ForeignKey("proposed_action.action_key"), nullable=False, unique=True),
    Column("borrower_key", ForeignKey("borrower.borrower_key"), nullable=False, index=True),
    Column("loan_key", ForeignKey("loan.loan_key"), nullable=False),
    Column("contact_key", ForeignKey("contact_point.contact_key"), nullable=False),  # the address visited
    Column("status", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance", BigInteger, nullable=False),  # overdue amount when planned, minor units
    Column("expected_recovery", BigInteger, nullable=False),  # minor units
    Column("cost", BigInteger, nullable=False),  # minor units
    Column("office_id", String(32), nullable=False),
    Column("distance_m", Integer, nullable=False),  # from the office, straight line
    Column("eligibility", JSON, nullable=False),  # the explained verdict that planned it
    Column("window_start", Date, nullable=False),  # the visit window the notice announces (local dates)
    Column("window_end", Date, nullable=False),
    Column("planned_at", DateTime(timezone=True), nullable=False),
    Column("notice_issued_at", DateTime(timezone=True)),
    Column("notice_letter", String(128)),  # the print batch file of the notice
    Column("notice_delivered_at", DateTime(timezone=True)),
    Column("notice_delivery", String(32)),  # registered_post | courier | hand | ...
    Column("scheduled_start", DateTime(timezone=True)),
    Column("scheduled_end", DateTime(timezone=True)),
    Column("checked_in_at", DateTime(timezone=True)),
    Column("check_in_latitude", Float),
    Column("check_in_longitude", Float),
    Column("checked_out_at", DateTime(timezone=True)),
    Column("check_out_latitude", Float),
    Column("check_out_longitude", Float),
    Column("outcome", JSON),
    Column("reported_at", DateTime(timezone=True)),
)

# The team of a scheduled visit (at least two certified staff: CN.VISIT.STAFF, HOUSE.VISIT.CERTIFIED).
visit_team = Table(
    "visit_team",
    metadata,
    Column("visit_key", ForeignKey("visit.visit_key"), primary_key=True),
    Column("staff_key", ForeignKey("staff.staff_key"), primary_key=True),
)

# Evidence files (recordings, photos) kept by content hash under data_dir/evidence/ab/abcdef…: one copy per
# content, one row per visit that refers to it.
visit_evidence = Table(
    "visit_evidence",
    metadata,
    Column("visit_key", ForeignKey("visit.visit_key"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(128), nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

# --- Dispatch (issue 4, H1) -------------------------------------------------------------------------

# The outbox's delivery state: one row per allowed action handed to a channel, keyed by the action's
# idempotency key. queued -> sending (leased by one dispatcher) -> sent -> delivered | failed; cancelled when
# the send-time re-check says no; dead when retries run out or a crashed send cannot be proven either way
# (adapters/channels/README.md). The verification code is kept encrypted so a retry re-sends the same code.
dispatch_outbox = Table(
    "dispatch_outbox",
    metadata,
    Column("outbox_key", Key, primary_key=True, autoincrement=True),
    Column("action_key", ForeignKey("proposed_action.action_key"), nullable=False, unique=True),
    Column("idempotency_key", String(160), nullable=False, unique=True),
    Column("loan_key", ForeignKey("loan.loan_key"), nullable=False),
    Column("channel", String(16), nullable=False),  # the ladder's channel: sms email app letter call visit
    Column("state", String(16), nullable=False),  # queued sending sent delivered failed cancelled dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True)),  # a 'sending' row belongs to its dispatcher until then
    Column("lease_owner", String(64)),
    Column("provider", String(32)),
    Column("provider_message_id", String(128), index=True),
    Column("address", String(64)),  # "cp:<contact_key>": the contact point used
    Column("code_digest", String(64)),  # the message's verification code (verification_code.code_digest)
    Column("code_enc", LargeBinary),  # the code itself, encrypted: a retry sends the same one
    Column("reason", Text),  # why cancelled / dead / failed, naming the rules where a rule decided
    Column("rules", Text),  # comma-separated rule ids behind a cancel
    Column("last_error", Text),
    Column("enqueued_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("done_at", DateTime(timezone=True)),  # delivered / failed / cancelled / dead
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_dispatch_outbox_state_next", "state", "next_attempt_at"),
)

# --- Verification checks (issue 4, point 6; owner: verification) ------------------------------------
# Every check on the public /verify page, kept to throttle guessing and to spot scam campaigns. Nothing
# here is personal data in clear: the client is a keyed hash of its IP address, the code only a prefix
# of its digest, a phone or ID number typed on the page only its keyed hash (services/verification.py).
verification_attempt = Table(
    "verification_attempt",
    metadata,
    Column("attempt_key", Key, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("client_key", String(64), nullable=False),  # HMAC of the client's IP address under the verification key
    # genuine | malformed | forged | unknown | expired | revoked | identity_mismatch | throttled
    Column("result", String(24), nullable=False),
    Column("failed", Boolean, nullable=False),  # counts towards the throttles
    Column("code_prefix", String(16)),  # first characters of the code's digest; null when it was not a code
    Column("borrower_key", ForeignKey("borrower.borrower_key")),  # when the code (or the typed number) names one
    Column("named_hash", String(64)),  # HMAC of the phone or ID number the person typed, if any
    Index("ix_verification_attempt_client_at", "client_key", "at"),
    Index("ix_verification_attempt_failed_at", "failed", "at"),
    Index("ix_verification_attempt_named_at", "named_hash", "at"),
)

# A burst of failed checks naming one debtor: someone is sending fake messages in the lender's name.
verification_alert = Table(
    "verification_alert",
    metadata,
    Column("alert_key", Key, primary_key=True, autoincrement=True),
    Column("kind", String(24), nullable=False),  # scam_campaign
    Column("named_hash", String(64), nullable=False, index=True),
    Column("masked", String(32), nullable=False),  # the typed number with all but its last four characters hidden
    Column("borrower_key", ForeignKey("borrower.borrower_key")),  # when identity_index resolves the hash
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("failures", Integer, nullable=False),
)

# Keyed hashes of each borrower's own phone numbers and national ID, so an alert can name the debtor
# without the page ever decrypting the book. Filled by `index_identities` when the book is imported.
identity_index = Table(
    "identity_index",
    metadata,
    Column("borrower_key", ForeignKey("borrower.borrower_key"), primary_key=True),
    Column("kind", String(16), primary_key=True),  # phone | national_id
    Column("digest", String(64), primary_key=True),
    Index("ix_identity_index_digest", "digest"),
)

# --- Calls (issue 4, point 2; owner: calls) ---------------------------------------------------------
# The agent work queue: one task per allowed `call` action, served by priority (1 first) then scheduled
# time. queued -> claimed (leased by one agent until `lease_until`) -> closed with a `result`; a no-answer
# goes back to queued for a later retry, a call the rules forbid at the moment is deferred with the rule.
call_task = Table(
    "call_task",
    metadata,
    Column("task_key", Key, primary_key=True, autoincrement=True),
    Column("action_key", ForeignKey("proposed_action.action_key"), nullable=False, unique=True),
    Column("borrower_key", ForeignKey("borrower.borrower_key"), nullable=False),
    Column("loan_key", ForeignKey("loan.loan_key"), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # queued | claimed | closed
    Column("scheduled_at", DateTime(timezone=True), nullable=False),  # not to be dialled before this
    Column("attempts", Integer, nullable=False),  # calls placed so far
    Column("agent", String(64)),  # who holds (or last held) the task
    Column("lease_until", DateTime(timezone=True)),
    Column("contact_key", ForeignKey("contact_point.contact_key")),  # the number being dialled
    Column("deferred_rules", Text),  # the rules that deferred it last, comma-separated
    Column("deferred_reason", Text),
    Column("result", String(24)),  # the last call outcome, or why the task closed without a call
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Index("ix_call_task_queue", "state", "priority", "scheduled_at"),
)

# Promises to pay taken on a call (later also on visits and the debtor's own channel; issue 5 follows
# them up): the amount in minor units of the loan's currency and the day it is promised for.
promise_to_pay = Table(
    "promise_to_pay",
    metadata,
    Column("promise_key", Key, primary_key=True, autoincrement=True),
    Column("promise_id", String(64), nullable=False, unique=True),
    Column("borrower_key", ForeignKey("borrower.borrower_key"), nullable=False, index=True),
    Column("loan_key", ForeignKey("loan.loan_key"), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("channel", String(16), nullable=False),  # call | visit | app …
    Column("taken_by", String(64), nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),  # open (issue 5: kept | partly_kept | broken)
    Column("event_id", String(160), nullable=False),  # the contact event it was taken in
)


# --- Repayment plans (issue 5) -----------------------------------------------------------------------
# A debtor's finances as stated, evidenced or estimated (encrypted: income and debts are personal data).
debtor_finances = Table(
    "debtor_finances",
    metadata,
    Column("finances_key", Key, primary_key=True, autoincrement=True),
    Column("borrower_key", ForeignKey("borrower.borrower_key"), nullable=False, index=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("finances_enc", LargeBinary, nullable=False),  # JSON of plans.affordability.Finances
)

# A plan offered for one loan: offered -> (pending_approval -> approved | declined) -> accepted -> active
# -> completed | broken. Once accepted it is a ledger event: from `effective_date` on, the loan's
# instalments due after that day are replaced by `plan_instalment` rows and a non-cash `credit_amount`
# settles what was due by then (ledger/plans.py explains why that keeps the state a function of events).
repayment_plan = Table(
    "repayment_plan",
    metadata,
    Column("plan_key", Key, primary_key=True, autoincrement=True),
    Column("plan_id", String(64), nullable=False, unique=True),
    Column("loan_key", ForeignKey("loan.loan_key"), nullable=False, index=True),
    Column("borrower_key", ForeignKey("borrower.borrower_key"), nullable=False),
    Column("finances_key", ForeignKey("debtor_finances.finances_key")),
    Column("kind", String(16), nullable=False),  # restructure | suspension | holiday | settlement
    Column("state", String(20), nullable=False),
    Column("offered_at", DateTime(timezone=True), nullable=False),
    Column("offered_by", String(64), nullable=False),
    Column("offered_role", String(16), nullable=False),
    Column("decided_by", String(64)),  # the supervisor who approved or declined
    Column("decided_at", DateTime(timezone=True)),
    Column("decision_reason", Text),
    Column("effective_date", Date),  # set when accepted
    Column("credit_amount", BigInteger),  # non-cash credit at effective_date: what was due by then
    Column("restructured", BigInteger, nullable=False),
    Column("plan_interest", BigInteger, nullable=False),
    Column("waived", JSON, nullable=False),  # by component, minor units
    Column("watch_until", Date),
    Column("ended_on", Date),  # completed or broken on
    Column("option", JSON, nullable=False),  # the option as offered (share, likelihood, reason …)
)

plan_instalment = Table(
    "plan_instalment",
    metadata,
    Column("plan_key", ForeignKey("repayment_plan.plan_key"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("due_date", Date, nullable=False),
    Column("principal", BigInteger, nullable=False),
    Column("interest", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
)
