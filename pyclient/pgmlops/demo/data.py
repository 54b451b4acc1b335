"""Deterministic synthetic churn data: customers, activity history, support notes.

Every number comes from one seeded numpy Generator, so two runs produce identical
data. Churn depends on the features through a known logistic model, which gives the
demo's trained models something real to learn; a planted shift in the "current" window
gives the drift monitor something real to find.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

HISTORY_DAYS = 84  # the current window (the last 7 days) ends today
PLANS = ("basic", "plus", "pro")
NOTE_ISSUES = (
    "the mobile app crashes on login", "asked to cancel because the price went up",
    "billing address needs updating after a move", "very happy with support, wants the pro plan",
    "invoice shows a double charge for last month", "cannot reset the password, email never arrives",
    "wants an annual plan with a discount", "video playback stutters every evening",
    "complains that the new interface is confusing", "requests a refund for an unused month",
    "asks how to export all data to a spreadsheet", "reports slow page loads since the update",
    "card was declined although it is valid", "wants to add two family members to the account",
    "asked whether the service works abroad", "threatens to switch to a competitor",
    "praises the fast response of the help desk", "got logged out on every device",
    "would like paper invoices by post", "notifications arrive twice on the phone",
)
FIRST = ("John", "Mary", "Ahmed", "Li", "Sofia", "Lucas", "Emma", "Noah", "Olga", "Ravi", "Grace", "Tomas",
         "Aisha", "Kenji", "Fatima", "Pierre", "Ingrid", "Diego", "Yuki", "Hannah", "Omar", "Chloe", "Mateo",
         "Priya", "Stefan", "Amara", "Lena", "Victor", "Zara", "Elias")
LAST = ("Doe", "Smith", "Khan", "Wang", "Rossi", "Silva", "Brown", "Muller", "Ivanova", "Patel", "Garcia",
        "Novak", "Okafor", "Tanaka", "Haddad", "Dubois", "Larsen", "Moreno", "Sato", "Fischer", "Nasser",
        "Martin", "Lopez", "Sharma", "Kowalski", "Mensah", "Berg", "Petrov", "Ali", "Costa")
STREETS = ("Main Street", "Oak Avenue", "Pine Road", "Elm Street", "Lake Drive", "Hill Road", "Park Avenue",
           "River Drive", "Cedar Street", "Maple Avenue")
# Typos and abbreviations that make near-duplicates of a record.
ABBREVIATIONS = {"Street": "St", "Avenue": "Ave", "Road": "Rd", "Drive": "Dr"}
NICKNAMES = {"John": "Jon", "Mary": "Marie", "Sofia": "Sophia", "Olga": "Olya", "Lucas": "Luke"}


@dataclass(frozen=True)
class DemoData:
    customers: pd.DataFrame  # customer_id, plan, tenure_days, signup_ts
    activity: pd.DataFrame  # customer_id, event_ts, sessions_7d, spend_30d, tickets_30d, plan
    spine: pd.DataFrame  # customer_id, ts, churned
    notes: pd.DataFrame  # note_id, customer_id, body
    current: pd.DataFrame  # like activity, the recent window with a planted shift


def churn_logit(sessions: np.ndarray, spend: np.ndarray, tickets: np.ndarray, pro: np.ndarray) -> np.ndarray:
    """The ground-truth churn model the demo's training jobs try to recover."""
    return -1.0 - 0.35 * (sessions - 5.0) - 0.015 * (spend - 60.0) + 0.6 * tickets - 0.5 * pro


def default_start() -> datetime:
    """Midnight UTC HISTORY_DAYS ago: values are seeded, dates follow the calendar so TTLs apply."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=HISTORY_DAYS)


def generate(customers: int = 50_000, snapshots: int = 4, notes: int = 2_000, seed: int = 7,
             start: datetime | None = None) -> DemoData:
    start = start or default_start()
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:06d}" for i in range(customers)])
    plan = rng.choice(PLANS, size=customers, p=[0.5, 0.35, 0.15])
    tenure = rng.integers(1, 2000, size=customers)
    cust = pd.DataFrame({"customer_id": ids, "plan": plan, "tenure_days": tenure})

    rows = customers * snapshots
    cid = np.repeat(ids, snapshots)
    day = np.tile(np.arange(snapshots) * 14, customers) + rng.integers(0, 7, size=rows)
    event_ts = pd.to_datetime(start) + pd.to_timedelta(day, unit="D") + pd.to_timedelta(
        rng.integers(0, 86_400, size=rows), unit="s")
    sessions = rng.poisson(5, size=rows).astype(np.int64)
    spend = np.round(rng.gamma(3.0, 20.0, size=rows), 2)
    tickets = rng.poisson(0.6, size=rows).astype(np.int64)
    activity = pd.DataFrame({"customer_id": cid, "event_ts": event_ts, "sessions_7d": sessions,
                             "spend_30d": spend, "tickets_30d": tickets, "plan": np.repeat(plan, snapshots)})

    # Spine: one labelled observation per customer, a few days after a random snapshot.
    pick = rng.integers(0, snapshots, size=customers) + np.arange(customers) * snapshots
    ts = activity["event_ts"].iloc[pick].reset_index(drop=True) + pd.Timedelta(days=3)
    p = 1 / (1 + np.exp(-churn_logit(sessions[pick], spend[pick], tickets[pick],
                                     (plan == "pro").astype(float))))
    spine = pd.DataFrame({"customer_id": ids, "ts": ts, "churned": rng.random(customers) < p})

    # Current window: engagement drops and tickets rise (the planted drift).
    n_cur = min(customers, 10_000)
    cur_ids = rng.choice(ids, size=n_cur, replace=False)
    current = pd.DataFrame({
        "customer_id": cur_ids,
        "event_ts": pd.to_datetime(start + timedelta(days=HISTORY_DAYS - 7)) + pd.to_timedelta(
            rng.integers(0, 7 * 86_400, size=n_cur), unit="s"),
        "sessions_7d": rng.poisson(3, size=n_cur).astype(np.int64),
        "spend_30d": np.round(rng.gamma(3.0, 20.0, size=n_cur), 2),
        "tickets_30d": rng.poisson(1.4, size=n_cur).astype(np.int64),
        "plan": rng.choice(PLANS, size=n_cur, p=[0.5, 0.35, 0.15]),
    })
    return DemoData(cust, activity, spine, make_notes(rng, ids, notes), current)


def make_notes(rng: np.random.Generator, ids: np.ndarray, count: int) -> pd.DataFrame:
    """Support notes; about one in ten is a typo'd near-duplicate of an earlier note."""
    bodies: list[str] = []
    owners: list[str] = []
    for i in range(count):
        if i > 10 and rng.random() < 0.1:
            j = int(rng.integers(0, i))
            bodies.append(perturb(rng, bodies[j]))
            owners.append(owners[j])
            continue
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        street = f"{int(rng.integers(1, 999))} {rng.choice(STREETS)}"
        bodies.append(f"{name}, {street}: {rng.choice(NOTE_ISSUES)}")
        owners.append(str(rng.choice(ids)))
    return pd.DataFrame({"note_id": np.arange(1, count + 1), "customer_id": owners, "body": bodies})


def perturb(rng: np.random.Generator, text: str) -> str:
    """A realistic near-duplicate: nickname, street abbreviation, a dropped letter."""
    for full, short in {**NICKNAMES, **ABBREVIATIONS}.items():
        if full in text and rng.random() < 0.7:
            text = text.replace(full, short, 1)
    words = text.split(" ")
    k = int(rng.integers(0, len(words)))
    if len(words[k]) > 4:
        pos = int(rng.integers(1, len(words[k]) - 1))
        words[k] = words[k][:pos] + words[k][pos + 1:]
    return " ".join(words)
