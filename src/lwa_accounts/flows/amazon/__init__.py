"""Sign in with Amazon: find, link or create the local account, one use case per module.

``sign_in`` (a verified profile -> signed in, or a step), ``pending`` (the link and
registration steps' records and their one state machine), ``link`` (prove the local
password), ``link_by_code`` (or a code sent to the account's verified address),
``register`` (a new account, or "a separate account instead"), ``attach`` (a signed-in
account attaches or detaches Amazon), ``profile`` (prefill and sync),
``identity`` (facts, links, sessions shared by all), ``refusals``, ``outcomes``.

Flows never commit and never talk to Amazon: the edge verifies the access token first,
outside any transaction, and audits a refused token (``audit_refused_token``). Every
Amazon sign-in, link, unlink and refusal is an ``amazon.*`` audit event.
"""

from lwa_accounts.flows.amazon.attach import attach_amazon, detach_amazon
from lwa_accounts.flows.amazon.link import (
    LinkAttempt,
    begin_link,
    check_link_password,
    confirm_link,
    finish_link,
    link_with_password,
)
from lwa_accounts.flows.amazon.link_by_code import (
    CodeSent,
    begin_code_link,
    code_offer,
    link_with_code,
    send_link_code,
)
from lwa_accounts.flows.amazon.outcomes import (
    Attached,
    FlowCompleted,
    FlowFinished,
    LinkRequired,
    RegistrationForm,
    RegistrationRequired,
    SignedInWithAmazon,
    SignInOutcome,
)
from lwa_accounts.flows.amazon.pending import (
    Browser,
    Device,
    OnAnotherDevice,
    Originator,
    collect_completed_flow,
    get_flow,
    hash_secret,
)
from lwa_accounts.flows.amazon.refusals import audit_refusal, audit_refused_token, refuse
from lwa_accounts.flows.amazon.register import (
    complete_registration,
    registration_fields,
    switch_to_registration,
)
from lwa_accounts.flows.amazon.sign_in import sign_in_with_profile

__all__ = [
    "Attached",
    "Browser",
    "CodeSent",
    "Device",
    "FlowCompleted",
    "FlowFinished",
    "LinkAttempt",
    "LinkRequired",
    "OnAnotherDevice",
    "Originator",
    "RegistrationForm",
    "RegistrationRequired",
    "SignInOutcome",
    "SignedInWithAmazon",
    "attach_amazon",
    "audit_refusal",
    "audit_refused_token",
    "begin_code_link",
    "begin_link",
    "check_link_password",
    "code_offer",
    "collect_completed_flow",
    "complete_registration",
    "confirm_link",
    "detach_amazon",
    "finish_link",
    "get_flow",
    "hash_secret",
    "link_with_code",
    "link_with_password",
    "refuse",
    "registration_fields",
    "send_link_code",
    "sign_in_with_profile",
    "switch_to_registration",
]
