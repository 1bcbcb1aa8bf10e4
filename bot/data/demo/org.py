"""The demo org's teams and its two-level topic taxonomy."""

from __future__ import annotations

from typing import Any

TEAMS: list[dict[str, Any]] = [
    {"name": "Billing", "huddle_channel": "billing-huddles", "channel": "billing"},
    {
        "name": "Devices & Network",
        "huddle_channel": "devices-network-huddles",
        "channel": "devices-network",
    },
    {
        "name": "Accounts & Retention",
        "huddle_channel": "accounts-retention-huddles",
        "channel": "accounts-retention",
    },
]

# Two-level taxonomy: 8 parent tags, 32 child tags.
# Coverage gaps (held by nobody in PEOPLE): "wifi calling",
# "fibre installation", "account ownership transfer".
TAGS: list[dict[str, Any]] = [
    # Parents
    {"name": "billing", "parent": None, "aliases": ["bill", "invoice", "statement"]},
    {"name": "payments", "parent": None, "aliases": ["payment", "pay", "paying"]},
    {
        "name": "accounts",
        "parent": None,
        "aliases": ["account", "account details", "customer record"],
    },
    {"name": "retention", "parent": None, "aliases": ["churn", "cancellation save", "win back"]},
    {"name": "devices", "parent": None, "aliases": ["device", "handset", "phone"]},
    {"name": "network", "parent": None, "aliases": ["coverage", "mast", "network fault"]},
    {"name": "roaming", "parent": None, "aliases": ["abroad", "travel", "travelling"]},
    {
        "name": "broadband",
        "parent": None,
        "aliases": ["home broadband", "internet", "home internet"],
    },
    # billing
    {
        "name": "refunds",
        "parent": "billing",
        "aliases": ["refund", "money back", "reimbursement", "overpayment"],
    },
    {
        "name": "late fees",
        "parent": "billing",
        "aliases": ["late fee", "late payment charge", "admin fee"],
    },
    {
        "name": "bill disputes",
        "parent": "billing",
        "aliases": ["dispute", "billing complaint", "wrong bill", "bill query"],
    },
    {
        "name": "itemised bills",
        "parent": "billing",
        "aliases": ["itemized bill", "call log", "usage breakdown"],
    },
    # payments
    {
        "name": "chargebacks",
        "parent": "payments",
        "aliases": ["chargeback", "card dispute", "payment reversal"],
    },
    {"name": "direct debit", "parent": "payments", "aliases": ["dd", "mandate", "bank payment"]},
    {
        "name": "prepaid top-up",
        "parent": "payments",
        "aliases": ["top up", "topup", "top-up", "recharge", "payg", "pay as you go", "voucher"],
    },
    {
        "name": "card payments",
        "parent": "payments",
        "aliases": ["card payment", "debit card", "credit card", "declined card"],
    },
    # accounts
    {
        "name": "identity verification",
        "parent": "accounts",
        "aliases": ["id check", "idv", "security questions", "kyc", "verification"],
    },
    {
        "name": "fraud",
        "parent": "accounts",
        "aliases": ["scam", "suspicious activity", "account takeover", "sim fraud"],
    },
    {
        "name": "account ownership transfer",
        "parent": "accounts",
        "aliases": ["change of ownership", "transfer of ownership", "bill payer change"],
    },
    {
        "name": "password reset",
        "parent": "accounts",
        "aliases": ["forgotten password", "login", "locked account", "pin reset"],
    },
    # retention
    {
        "name": "contract cancellation",
        "parent": "retention",
        "aliases": ["cancel", "cancellation", "terminate contract", "early termination fee", "etf"],
    },
    {
        "name": "upgrades",
        "parent": "retention",
        "aliases": ["upgrade", "new phone", "early upgrade", "handset upgrade"],
    },
    {
        "name": "loyalty offers",
        "parent": "retention",
        "aliases": ["loyalty discount", "retention offer", "price match"],
    },
    {
        "name": "porting",
        "parent": "retention",
        "aliases": [
            "port",
            "pac",
            "pac code",
            "stac",
            "number transfer",
            "keep my number",
            "port out",
            "port in",
        ],
    },
    # devices
    {
        "name": "sim",
        "parent": "devices",
        "aliases": ["sim card", "esim", "sim swap", "replacement sim", "puk"],
    },
    {
        "name": "device insurance",
        "parent": "devices",
        "aliases": ["insurance", "insurance claim", "lost phone", "stolen phone", "damage cover"],
    },
    {
        "name": "handset repairs",
        "parent": "devices",
        "aliases": ["repair", "broken screen", "warranty", "faulty phone"],
    },
    {
        "name": "device unlocking",
        "parent": "devices",
        "aliases": ["unlock", "network unlock", "unlock code", "locked phone"],
    },
    # network
    {"name": "5g coverage", "parent": "network", "aliases": ["5g", "5g signal", "5g not working"]},
    {
        "name": "apn settings",
        "parent": "network",
        "aliases": ["apn", "mobile data settings", "mms settings", "data not working"],
    },
    {
        "name": "signal complaints",
        "parent": "network",
        "aliases": ["no signal", "dropped calls", "poor signal", "call drops"],
    },
    {
        "name": "wifi calling",
        "parent": "network",
        "aliases": ["wi-fi calling", "vowifi", "wifi call"],
    },
    # roaming
    {
        "name": "roaming charges",
        "parent": "roaming",
        "aliases": ["roaming bill", "roaming fees", "bill shock abroad"],
    },
    {
        "name": "roaming bundles",
        "parent": "roaming",
        "aliases": ["travel pass", "roam pass", "eu roaming", "roaming add-on"],
    },
    {
        "name": "international calls",
        "parent": "roaming",
        "aliases": ["intl calls", "calling abroad", "international dialling", "idd"],
    },
    {
        "name": "spending caps",
        "parent": "roaming",
        "aliases": ["spend cap", "usage cap", "bill cap", "bill limit"],
    },
    # broadband
    {
        "name": "router setup",
        "parent": "broadband",
        "aliases": ["router", "hub", "wifi setup", "modem"],
    },
    {
        "name": "fibre installation",
        "parent": "broadband",
        "aliases": ["fiber installation", "engineer visit", "install appointment", "ftth"],
    },
    {
        "name": "broadband outages",
        "parent": "broadband",
        "aliases": ["outage", "internet down", "no internet", "service down"],
    },
    {
        "name": "speed complaints",
        "parent": "broadband",
        "aliases": ["slow broadband", "slow internet", "speed test", "minimum speed guarantee"],
    },
]
