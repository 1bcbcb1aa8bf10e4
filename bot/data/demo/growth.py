"""The demo org's growth: learning goals, a mentor pair, and last week of Billing's
huddle threads (one observed by a learner), so the profile, App Home, the dashboard
and the weekly digest have something to show. Pure data: times are hours into the
week the last digest covered, or days before the seeding."""

from __future__ import annotations

from typing import Any

# Learning goals: who, which topic, set how many days before the seeding.
GOALS: list[dict[str, Any]] = [
    {"handle": "omar", "tag": "refunds", "days_ago": 21},
    {"handle": "alex", "tag": "chargebacks", "days_ago": 3},
    {"handle": "zoe", "tag": "roaming", "days_ago": 12},
]

MENTORS: list[dict[str, Any]] = [
    {"learner": "omar", "mentor": "maria", "tag": "refunds", "lead": "priya", "days_ago": 14},
]

# Billing's huddle threads in the week its last digest covered. `reply`: who answered
# first and after how many seconds (None: nobody did); `resolved`: the entry it became.
HUDDLES: list[dict[str, Any]] = [
    {
        "asker": "alex",
        "topic": "refund for a top-up charged twice",
        "hours": 26,
        "experts": ["maria", "priya"],
        "reply": ["maria", 95],
        "observers": ["omar"],
        "resolved": {
            "title": "A top-up charged twice",
            "body": "Refund the duplicate from Payments → Top-ups → Reverse; it lands in 3 days.",
            "tags": ["refunds", "prepaid top-up"],
            "minutes": 18,
        },
    },
    {
        "asker": "hannah",
        "topic": "chargeback on a cancelled contract",
        "hours": 50,
        "experts": ["sipho", "priya"],
        "reply": ["priya", 240],
        "observers": [],
        "resolved": {
            "title": "Chargebacks on cancelled contracts",
            "body": "Send the signed cancellation and the final bill to the issuer within 10 days.",
            "tags": ["chargebacks"],
            "minutes": 35,
        },
    },
    {
        "asker": "ewa",
        "topic": "late fee after a bank holiday",
        "hours": 98,
        "experts": ["hannah"],
        "reply": ["hannah", 60],
        "observers": [],
        "resolved": {
            "title": "Late fees after a bank holiday",
            "body": "Waive it: payments due on a bank holiday count on the next working day.",
            "tags": ["late fees"],
            "minutes": 9,
        },
    },
    {
        "asker": "joy",
        "topic": "itemised bill for a closed account",
        "hours": 122,
        "experts": ["grace.o"],
        "reply": None,
        "observers": [],
        "resolved": None,
    },
]

# Who-knows questions of that week that found nobody.
UNMATCHED: list[dict[str, Any]] = [
    {"handle": "alex", "text": "refund to a closed bank account", "hours": 30},
    {"handle": "omar", "text": "refund to a closed bank account", "hours": 75},
    {"handle": "tomasz", "text": "direct debit for a joint account abroad", "hours": 140},
]
