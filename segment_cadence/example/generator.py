"""Synthetic, reproducible data for an example jeweller, generated entirely in DuckDB SQL.

Why this shape: the pipeline (features, RFM, BG/NBD churn, segments, campaign firewall)
needs data that behaves like a real high-ticket, low-frequency retailer, at sizes from a
test fixture (a few thousand customers) to a benchmark (10 million customers, ~100 million
order lines) on a small machine. So:

* No Python per-row work. Every row is computed by DuckDB from `range()` and streamed
  straight into Parquet with `COPY ... TO`, so memory stays flat however large the output.
* Reproducible. DuckDB's `random()` cannot be replayed row for row across threads, so every
  random draw is a pure function of a hash of (seed, salt, key1, key2): the same seed and
  parameters give the same table contents whatever the thread scheduling or row order.
  Customer attributes are SQL macros of the customer number, so any table (orders, events,
  sends) can recompute a customer's latent state instead of joining to it.
* Realistic enough to segment. Customers are prospects (never buy), casual buyers or
  collectors; each has a latent "alive until" date (exponential dropout) after which
  nothing happens; repeat purchases are a gamma-mixed Poisson process (geometric counts)
  thinned by a seasonal weight, so Diwali, the wedding seasons and December peak and the
  monsoon summer is quiet; amounts are lognormal by category; engagement comes in bursts
  (consideration periods, one just before the first purchase) and in answer to campaign
  sends. Governance problems are planted on purpose: a few campaigns target paused
  segments, and new senders send within their first 30 days.
* Something for the lift measurement to find. In the last month two campaigns go, by SMS
  on its third day, to the past buyers who look like a segment's members at the month before
  (a superset of the segment, never a paused one), less the customers the dictionary holds
  out, as a campaign tool that asks the firewall would send them: one to loyal repeat buyers,
  after which a recipient buys within 20 days with probability PLANTED_LIFT (order ids
  beyond every customer's range), one to occasional buyers, which changes nothing.

Run `python -m segment_cadence.example.generator --customers 1000000 --out var/raw`.
"""

from __future__ import annotations

import argparse
import calendar
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
from tqdm import tqdm

TABLES = ("customers", "orders", "engagement_events", "campaign_sends", "team_members")

# Line ids are (customer * 100 + order index) * 3 + line, printed with 10 digits.
MAX_CUSTOMERS = 33_333_333
MAX_REPEAT_ORDERS = 99  # per customer over the history; order index 0 is the first purchase
MAX_EVENTS = 300  # background engagement events per customer
MEMORY_LIMIT = "2GB"  # COPY streams; this only bounds DuckDB's buffers (it spills beyond)

# Seasonal weight of each calendar month (Jan..Dec) for signups and orders: wedding seasons
# (Nov-Feb, Apr-May), Dhanteras/Diwali (Oct-Nov) and December peak; monsoon summer is quiet.
SEASON_WEIGHTS = (1.20, 1.10, 0.85, 1.05, 1.05, 0.70, 0.62, 0.78, 0.80, 1.45, 1.65, 1.40)
WEDDING_MONTHS = (1, 2, 4, 5, 11, 12)

# Personas: share of customers, repeat-purchase rate multiplier (an integer, so the
# calibration sums are exact), mean remaining life in days, engagement events per alive year.
PERSONAS = {
    "prospect": {"share": 0.08, "rate": 0, "life_days": 540, "events_per_year": 5.0},
    "casual": {"share": 0.82, "rate": 1, "life_days": 900, "events_per_year": 4.4},
    "collector": {"share": 0.10, "rate": 5, "life_days": 2600, "events_per_year": 10.0},
}
PRE_HISTORY_SHARE = 0.18  # customers already on the books when the history starts
SAME_DAY_FIRST_PURCHASE = 0.55  # signed up at the till
LINES_PER_ORDER = {1: 0.80, 2: 0.15, 3: 0.05}

# Category: share outside wedding months, median line amount, lognormal sigma. Bridal's
# share doubles in wedding months.
CATEGORIES = {
    "rings": (0.24, 420.0, 0.95),
    "necklaces": (0.16, 620.0, 1.00),
    "earrings": (0.20, 260.0, 0.90),
    "bracelets": (0.12, 360.0, 0.90),
    "bridal": (0.06, 2100.0, 0.85),
    "watches": (0.08, 900.0, 0.80),
    "repairs": (0.14, 55.0, 0.60),
}
BRIDAL_WEDDING_SHARE = 0.13
COLLECTOR_SPEND = 1.6  # collectors buy pricier pieces
MAX_AMOUNT = 250_000.0  # well under the ingest's "absurd amount" threshold

SEGMENTS = {  # active segments a campaign may legitimately target, with weights
    "at_risk": 0.20,
    "occasional": 0.20,
    "loyal_repeat": 0.15,
    "new_first_purchase": 0.15,
    "prospects": 0.15,
    "dormant": 0.10,
    "vip_collectors": 0.05,
}
PAUSED_SEGMENTS = ("post_purchase_cooldown", "evaluation")
PAUSED_CAMPAIGN_SHARE = 0.02  # planted: at least one campaign, ~2%, targets a paused segment

THEMED_CAMPAIGNS = {  # calendar month -> name of its first campaign; {year} is filled in
    1: "Wedding Season Edit",
    2: "Valentine Rings",
    3: "Holi Colour Gems",
    4: "Akshaya Tritiya Gold",
    5: "Wedding Season Edit",
    6: "Monsoon Pearls",
    7: "Monsoon Pearls",
    8: "Raksha Bandhan Gifts",
    9: "Navratri Nine Colours",
    10: "Diwali Sparkle {year}",
    11: "Dhanteras & Diwali Gold {year}",
    12: "Year-End Gifting {year}",
}
EVERGREEN_CAMPAIGNS = (
    "Solitaire Week",
    "Heritage Collection",
    "Birthday Rewards",
    "Gold Exchange Days",
    "Lightweight Daily Wear",
    "Repair & Polish Clinic",
    "Temple Jewellery Showcase",
    "Diamond Studs Edit",
)

TEAM = (  # (name, team); the last NEW_SENDERS join in the last months of the history
    ("Ananya Rao", "crm"),
    ("Vikram Mehta", "growth"),
    ("Priya Nair", "crm"),
    ("Arjun Iyer", "ecommerce"),
    ("Kavya Menon", "stores"),
    ("Rohan Kapoor", "growth"),
    ("Meera Joshi", "stores"),
    ("Siddharth Das", "ecommerce"),
    ("Neha Kulkarni", "crm"),
    ("Aditya Sen", "growth"),
    ("Ishita Banerjee", "ecommerce"),
    ("Karthik Reddy", "crm"),
)
NEW_SENDERS = 2  # planted: each joins days before a campaign they then send
# Planted lift (the last month): campaign id, name, targeted segment, the look-alike rule at
# the month before (least distinct orders, most days since the last order), and the chance
# that a recipient buys because of it. The occasional look-alikes exclude the loyal ones, so
# the two audiences are apart.
PLANTED_LIFT = 0.25
PLANTED_CAMPAIGNS = (
    ("CMP9001", "Loyalty Preview Evening", "loyal_repeat", 2, 365, PLANTED_LIFT),
    ("CMP9002", "Occasional Catalogue", "occasional", 1, 730, 0.0),
)
PLANTED_SEND_DAY = 3
PLANTED_SENDER = "S001"
MID_HISTORY_SENDERS = 2  # joined during the history, before the new ones


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. The same config always produces the same table contents."""

    customers: int = 20_000
    end_month: str = "2026-10"  # last complete month (YYYY-MM); data ends on its last day
    history_months: int = 36  # months of history up to and including end_month
    seed: int = 42
    # Mean order LINES per customer over the history (high-ticket, low frequency). At 10M
    # customers and 10.0 this gives ~100M lines.
    orders_per_customer: float = 3.0
    # Plant the two lift campaigns of the last month (PLANTED_CAMPAIGNS).
    plant_lift: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.customers <= MAX_CUSTOMERS:
            raise ValueError(
                f"customers must be between 1 and {MAX_CUSTOMERS:,} (10-digit line ids), "
                f"got {self.customers}"
            )
        if not 3 <= self.history_months <= 240:
            raise ValueError(f"history_months must be between 3 and 240, got {self.history_months}")
        if not 0 < self.orders_per_customer <= 200:
            raise ValueError(
                f"orders_per_customer must be in (0, 200], got {self.orders_per_customer}"
            )
        if not -(2**63) <= self.seed < 2**63:
            raise ValueError(f"seed must fit in 64 bits, got {self.seed}")
        _ = self.end_date  # validates end_month

    @property
    def end_date(self) -> date:
        """Last day of end_month: nothing is dated after it."""
        text = self.end_month.strip()
        try:
            if len(text) != 7 or text[4] != "-":
                raise ValueError
            year, month = int(text[:4]), int(text[5:7])
            return date(year, month, calendar.monthrange(year, month)[1])
        except ValueError:
            raise ValueError(f"end_month must look like 2026-10, got {self.end_month!r}") from None

    @property
    def start_date(self) -> date:
        """First day of the first history month."""
        end = self.end_date
        index = end.year * 12 + end.month - 1 - (self.history_months - 1)
        return date(index // 12, index % 12 + 1, 1)


# --------------------------------------------------------------------------------------
# SQL building blocks


def _lit(value: date | float | int | str) -> str:
    """A SQL literal. Only for values this module computes or has validated."""
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float):
        return f"{value!r}::DOUBLE"
    return str(int(value))


def _pick(u: str, options: dict[str, float] | Sequence[tuple[str, float]]) -> str:
    """CASE expression choosing a label by inverse CDF of the uniform expression `u`."""
    items = list(options.items()) if isinstance(options, dict) else list(options)
    total = sum(weight for _, weight in items)
    cumulative, branches = 0.0, []
    for label, weight in items[:-1]:
        cumulative += weight / total
        branches.append(f"WHEN {u} < {_lit(cumulative)} THEN {_lit(label)}")
    return f"CASE {' '.join(branches)} ELSE {_lit(items[-1][0])} END"


def _by_persona(field: str, cast: type = float) -> str:
    return " ".join(f"WHEN {_lit(p)} THEN {_lit(cast(v[field]))}" for p, v in PERSONAS.items())


def _macros(config: GeneratorConfig) -> list[str]:
    """Random draws and customer attributes as SQL macros.

    Why macros: the same customer attribute (persona, signup, alive-until, consent) is
    needed by several tables; as a pure function of the customer number it is recomputed
    where needed instead of joined, which keeps every COPY a streaming scan.
    """
    start, end = config.start_date, config.end_date
    history_days = (end - start).days + 1
    pre_days = 3 * 365
    w_max = max(SEASON_WEIGHTS)
    prospect, collector = PERSONAS["prospect"]["share"], PERSONAS["collector"]["share"]
    weights = "[" + ", ".join(f"{w!r}" for w in SEASON_WEIGHTS) + "]::DOUBLE[]"

    def candidate_day(j: int) -> str:
        return f"({_lit(start)} + floor(uni(k1, {j}, salt) * {history_days})::INTEGER)"

    tries = 4  # seasonal rejection sampling; after 3 misses the 4th candidate stands
    seasonal_cases = " ".join(
        f"WHEN uni(k1, {j}, salt || '~accept') * {_lit(w_max)} < season_w({candidate_day(j)}) "
        f"THEN {candidate_day(j)}"
        for j in range(1, tries)
    )
    return [
        # Uniform in [0, 1): the top 53 bits of a 64-bit hash of (seed, salt, k1, k2).
        # Chained one-value hashes, not hash(seed, k1, k2, salt): DuckDB combines the
        # hashes of several arguments with XOR, so two salts would give streams differing
        # by a constant XOR, i.e. strongly dependent draws. hash(seed, salt) is a constant.
        f"""CREATE MACRO uni(k1, k2, salt) AS
            (hash(xor(hash(xor(k1::UBIGINT, hash({int(config.seed)}::BIGINT, salt))),
                      k2::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0""",
        # Standard normal by Box-Muller from two independent uniforms.
        """CREATE MACRO std_normal(k1, k2, salt) AS
            sqrt(-2.0 * ln(1.0 - uni(k1, k2, salt || '~a')))
            * cos(2.0 * pi() * uni(k1, k2, salt || '~b'))""",
        "CREATE MACRO exponential(mean, k1, k2, salt) AS -mean * ln(1.0 - uni(k1, k2, salt))",
        "CREATE MACRO lognormal(median, sigma, k1, k2, salt) AS "
        "median * exp(sigma * std_normal(k1, k2, salt))",
        # Count with the given mean, P(k) = (1-q) q^k: a Poisson count whose rate is
        # exponentially (gamma shape 1) distributed, i.e. heterogeneous customers.
        """CREATE MACRO geometric(mean, k1, k2, salt) AS CASE WHEN mean <= 0 THEN 0 ELSE
            floor(ln(1.0 - uni(k1, k2, salt)) / ln(mean / (1.0 + mean)))::BIGINT END""",
        # Poisson-ish count with mild overdispersion (negative binomial, shape 3).
        """CREATE MACRO poissonish(mean, k1, k2, salt) AS
            geometric(mean / 3.0, k1, k2, salt || '~1')
            + geometric(mean / 3.0, k1, k2, salt || '~2')
            + geometric(mean / 3.0, k1, k2, salt || '~3')""",
        f"CREATE MACRO season_w(d) AS ({weights})[month(d)]",
        # A day in the history, drawn with the seasonal weights (rejection sampling).
        f"""CREATE MACRO seasonal_day(k1, salt) AS
            CASE {seasonal_cases} ELSE {candidate_day(tries)} END""",
        # Customer attributes, as functions of the customer number n.
        f"""CREATE MACRO c_persona(n) AS CASE
            WHEN uni(n, 0, 'persona') < {_lit(prospect)} THEN 'prospect'
            WHEN uni(n, 0, 'persona') < {_lit(prospect + collector)} THEN 'collector'
            ELSE 'casual' END""",
        f"""CREATE MACRO c_signup(n) AS CASE
            WHEN uni(n, 0, 'pre_history') < {_lit(PRE_HISTORY_SHARE)}
            THEN {_lit(start)} - 1 - floor(uni(n, 0, 'pre_day') * {pre_days})::INTEGER
            ELSE seasonal_day(n, 'signup') END""",
        "CREATE MACRO c_consent(n) AS uni(n, 0, 'consent') < 0.85",
        # Latent dropout: remaining life is exponential from signup, or from the start of
        # the history for customers already on the books (memoryless, so the same law).
        f"""CREATE MACRO c_alive_until(n, signup, persona) AS
            greatest(signup, {_lit(start)})
            + floor(exponential(CASE persona {_by_persona("life_days")} END,
                                n, 0, 'life'))::INTEGER""",
        f"""CREATE MACRO c_active_end(n, signup, persona) AS
            least(c_alive_until(n, signup, persona), {_lit(end)})""",
        # 'C00000042': a zero-padded id; cheaper than printf, and x < base is guaranteed
        # by the limits above (MAX_CUSTOMERS, MAX_REPEAT_ORDERS, MAX_EVENTS).
        "CREATE MACRO pad_id(prefix, x, base) AS prefix || substr((x::BIGINT + base)::VARCHAR, 2)",
        "CREATE MACRO c_id(n) AS pad_id('C', n, 100000000)",
    ]


def _customer_latent(config: GeneratorConfig) -> str:
    """A view: one row per customer with the latent state every table derives from."""
    start = _lit(config.start_date)
    return f"""
    CREATE VIEW customer_latent AS
    WITH base AS (
        SELECT n, c_persona(n) AS persona, c_signup(n) AS signup, c_consent(n) AS consent
        FROM customer_numbers
    ), alive AS (
        SELECT *, c_active_end(n, signup, persona) AS active_end,
            greatest(signup, {start}) AS observed_from,
            signup + CASE WHEN uni(n, 0, 'first_delay') < {_lit(SAME_DAY_FIRST_PURCHASE)} THEN 0
                ELSE floor(exponential(45.0, n, 0, 'first_delay_days'))::INTEGER END
                AS first_purchase
        FROM base
    ), buying AS (
        SELECT *,
            persona <> 'prospect' AND signup >= {start} AND first_purchase <= active_end
                AS has_first_purchase,
            CASE WHEN signup >= {start} THEN first_purchase + 1 ELSE {start} END
                AS repeat_from,
            CASE persona {_by_persona("rate", int)} END AS rate_multiplier,
            CASE persona {_by_persona("events_per_year")} END AS events_per_year
        FROM alive
    )
    SELECT *, greatest(active_end - repeat_from + 1, 0) AS repeat_days,
        greatest(active_end - observed_from + 1, 0) AS observed_days
    FROM buying
    """


# --------------------------------------------------------------------------------------
# Tables


def _customers_sql() -> str:
    regions = {"North": 0.30, "South": 0.26, "West": 0.20, "East": 0.14, "Central": 0.10}
    ages = {"18-24": 0.08, "25-34": 0.30, "35-44": 0.28, "45-54": 0.18, "55-64": 0.11, "65+": 0.05}
    languages = {  # language follows region
        "North": {"en": 0.45, "hi": 0.55},
        "South": {"en": 0.40, "ta": 0.32, "te": 0.28},
        "West": {"en": 0.40, "mr": 0.35, "hi": 0.25},
        "East": {"en": 0.35, "bn": 0.45, "hi": 0.20},
        "Central": {"en": 0.30, "hi": 0.70},
    }
    u_lang = "uni(n, 0, 'language')"
    language = " ".join(f"WHEN {_lit(r)} THEN {_pick(u_lang, w)}" for r, w in languages.items())
    return f"""
    SELECT c_id(n) AS customer_id, signup AS signup_date, region,
        {_pick("uni(n, 0, 'age')", ages)} AS age_band,
        CASE region {language} END AS language,
        consent AS email_consent
    FROM (SELECT n, signup, consent, {_pick("uni(n, 0, 'region')", regions)} AS region
          FROM customer_latent)
    """


def _category_case(u: str, month: str) -> str:
    others = {c: w for c, (w, _, _) in CATEGORIES.items() if c != "bridal"}
    wedding = f"{month} IN ({', '.join(map(str, WEDDING_MONTHS))})"
    usual = CATEGORIES["bridal"][0]
    p_bridal = f"(CASE WHEN {wedding} THEN {_lit(BRIDAL_WEDDING_SHARE)} ELSE {_lit(usual)} END)"
    rescaled = f"(({u}) - {p_bridal}) / (1.0 - {p_bridal})"
    return f"CASE WHEN {u} < {p_bridal} THEN 'bridal' ELSE {_pick(rescaled, others)} END"


def _orders_sql(repeat_rate: float) -> str:
    """Order lines: a first purchase at or soon after signup, then seasonal repeats.

    Repeats: a candidate count from a geometric law (Poisson with a gamma-mixed rate) with
    mean rate * multiplier * max season weight * years alive, spread uniformly over the
    customer's active window and each kept with probability season weight / max weight,
    which thins the process into a seasonal one without any join.
    """
    w_max = max(SEASON_WEIGHTS)
    lines = _pick("uni(onum, 0, 'lines')", [(str(k), p) for k, p in LINES_PER_ORDER.items()])
    medians = " ".join(f"WHEN {_lit(c)} THEN {_lit(m)}" for c, (_, m, _) in CATEGORIES.items())
    sigmas = " ".join(f"WHEN {_lit(c)} THEN {_lit(s)}" for c, (_, _, s) in CATEGORIES.items())
    return f"""
    WITH cust AS (
        SELECT n, persona, has_first_purchase, first_purchase, repeat_from, active_end,
            least(geometric({_lit(repeat_rate)} * rate_multiplier * {_lit(w_max)} * repeat_days / 365.25,
                            n, 0, 'repeat_count'), {MAX_REPEAT_ORDERS}) AS candidates
        FROM customer_latent
    ), slots AS (
        SELECT n, persona, first_purchase, repeat_from, active_end,
            unnest(range(CASE WHEN has_first_purchase THEN 0 ELSE 1 END, candidates + 1)) AS k
        FROM cust
        WHERE has_first_purchase OR candidates > 0
    ), orders AS (
        SELECT n, persona, k AS order_index,
            CASE WHEN k = 0 THEN first_purchase
                ELSE repeat_from
                    + floor(uni(n, k, 'repeat_day') * (active_end - repeat_from + 1))::INTEGER
            END AS order_date
        FROM slots
    ), kept AS (
        SELECT * FROM orders
        WHERE order_index = 0
            OR uni(n, order_index, 'season_keep') * {_lit(w_max)} < season_w(order_date)
    ), numbered AS (
        SELECT *, n * 100 + order_index AS onum FROM kept
    ), exploded AS (
        SELECT n, persona, onum, order_date, unnest(range(({lines})::INTEGER)) AS j
        FROM numbered
    ), categorised AS (
        SELECT *, {_category_case("uni(onum, j, 'category')", "month(order_date)")} AS category
        FROM exploded
    )
    SELECT pad_id('L', onum * 3 + j, 10000000000) AS order_line_id,
        pad_id('O', onum, 10000000000) AS order_id,
        c_id(n) AS customer_id,
        order_date,
        round(least(greatest(
            lognormal((CASE category {medians} END)
                        * (CASE WHEN persona = 'collector' THEN {_lit(COLLECTOR_SPEND)} ELSE 1.0 END),
                      CASE category {sigmas} END, onum, j, 'amount'),
            5.0), {_lit(MAX_AMOUNT)}), 2) AS amount,
        category
    FROM categorised
    """


def _campaigns_sql(config: GeneratorConfig) -> str:
    """2-4 campaigns a month, each to 1.5-5% of customers; ~2% target paused segments."""
    n = config.customers
    themed = " ".join(
        f"WHEN {m} THEN replace({_lit(name)}, '{{year}}', year(sent_date)::VARCHAR)"
        for m, name in THEMED_CAMPAIGNS.items()
    )
    evergreen = "[" + ", ".join(_lit(x) for x in EVERGREEN_CAMPAIGNS) + "]"
    n_evergreen = len(EVERGREEN_CAMPAIGNS)
    channel = _pick("uni(seq, 0, 'channel')", {"email": 0.60, "whatsapp": 0.25, "sms": 0.15})
    segment = _pick("uni(seq, 0, 'segment')", SEGMENTS)
    paused = _pick("uni(seq, 0, 'paused_segment')", dict.fromkeys(PAUSED_SEGMENTS, 1.0))
    return f"""
    CREATE TEMP TABLE campaigns AS
    WITH months AS (
        SELECT m AS month_index,
            ({_lit(config.start_date)} + to_months(m::INTEGER))::DATE AS month_start,
            2 + floor(uni(m, 0, 'campaigns_in_month') * 3)::INTEGER AS campaigns
        FROM range({config.history_months}) t(m)
    ), drawn AS (
        SELECT month_index, month_start, i AS campaign_in_month,
            month_start + floor(uni(month_index, i, 'campaign_day') * 28)::INTEGER AS sent_date
        FROM months, range(campaigns) r(i)
    ), numbered AS (
        SELECT *, row_number() OVER (ORDER BY month_index, campaign_in_month) AS seq FROM drawn
    ), ranked AS (
        SELECT *,
            row_number() OVER (ORDER BY uni(seq, 0, 'paused'), seq) AS paused_rank,
            count(*) OVER () AS n_campaigns,
            1 + floor(uni(seq, 0, 'stride') * {max(n - 1, 1)})::BIGINT AS stride_from
        FROM numbered
    )
    SELECT seq, printf('CMP%04d', seq) AS campaign_id, month_index, month_start,
        campaign_in_month, sent_date,
        CASE campaign_in_month
            WHEN 0 THEN CASE month(sent_date) {themed} END
            WHEN 1 THEN 'New Arrivals ' || monthname(sent_date)
            ELSE {evergreen}[1 + (floor(uni(seq, 0, 'name') * {n_evergreen})::INTEGER
                                  + campaign_in_month) % {n_evergreen}]
        END AS campaign_name,
        {channel} AS channel,
        CASE WHEN paused_rank <= greatest(1, round(n_campaigns * {_lit(PAUSED_CAMPAIGN_SHARE)}))
            THEN {paused} ELSE {segment} END AS targeted_segment,
        -- Audience: customers 1 + (stride * i + offset) mod N for i < audience. A stride
        -- coprime to N makes this a permutation, so nobody is picked twice, no join needed.
        greatest(1, round((0.015 + 0.035 * uni(seq, 0, 'audience')) * {n}))::BIGINT AS audience,
        list_filter(range(stride_from, stride_from + 64), lambda x: gcd(x, {n}) = 1)[1]
            AS stride,
        floor(uni(seq, 0, 'offset') * {n})::BIGINT AS offset_
    FROM ranked
    """


def _team_members_sql(config: GeneratorConfig) -> str:
    """Senders: most joined before the history, two during it, and the last NEW_SENDERS in
    its last months, each a few days before the first campaign of that month, which they
    are then given (planted first-30-days sends)."""
    start, end = config.start_date, config.end_date
    history_days = (end - start).days + 1
    rows = ", ".join(
        f"({i}, {_lit(f'S{i:03d}')}, {_lit(name)}, {_lit(team)})"
        for i, (name, team) in enumerate(TEAM, start=1)
    )
    veterans = len(TEAM) - NEW_SENDERS - MID_HISTORY_SENDERS
    last = config.history_months - 1
    return f"""
    CREATE TEMP TABLE team_members AS
    WITH team(i, sender_id, name, team) AS (VALUES {rows}),
    planted AS (
        SELECT {len(TEAM)} - ({last} - month_index) AS i, seq AS planted_seq,
            greatest(month_start,
                     sent_date - 1 - floor(uni(month_index, 0, 'joined_lead') * 9)::INTEGER)
                AS joined_date
        FROM campaigns
        WHERE campaign_in_month = 0 AND month_index > {last - NEW_SENDERS}
    )
    SELECT sender_id, name, team, planted_seq,
        coalesce(planted.joined_date, CASE
            WHEN team.i <= {veterans}
                THEN {_lit(start)} - 30 - floor(uni(team.i, 0, 'joined') * 1800)::INTEGER
            ELSE {_lit(start)}
                + floor((0.2 + 0.5 * uni(team.i, 0, 'joined')) * {history_days})::INTEGER
        END) AS joined_date
    FROM team LEFT JOIN planted USING (i)
    """


# Planted joiners send the campaign they were dated before; every other campaign goes to a
# pseudo-random sender who had joined by its send date.
_CAMPAIGN_SENDERS = """
CREATE TEMP TABLE campaigns_final AS
SELECT c.*, coalesce(planted.sender_id, chosen.sender_id) AS sender_id
FROM campaigns c
LEFT JOIN (
    SELECT planted_seq AS seq, sender_id FROM team_members WHERE planted_seq IS NOT NULL
) planted USING (seq)
LEFT JOIN (
    SELECT c2.seq,
        arg_min(t.sender_id, uni(c2.seq, t.sender_id[2:]::INTEGER, 'sender')) AS sender_id
    FROM campaigns c2 JOIN team_members t ON t.joined_date <= c2.sent_date
    GROUP BY c2.seq
) chosen USING (seq)
"""

_TEAM_MEMBERS = "SELECT sender_id, name, team, joined_date FROM team_members"


def _look_alikes_sql(config: GeneratorConfig, orders: Path, events: Path) -> str:
    """The planted campaigns' look-alikes, each with `held_out`: past buyers who look like
    a member of the targeted segment at the month before the send.

    They skip whoever may be in a paused segment then: a purchase in the last 30 days (the
    cool-down) or, silent for more than 90 days, 4 engagement events in the last 95
    (evaluation needs that and more), so no planted send is a pause violation.
    """
    from segment_cadence.defs.dictionary import segment_dictionary
    from segment_cadence.defs.segments import holdouts

    plan = segment_dictionary.load().holdouts
    end = config.end_date
    month_before = date(end.year, end.month, 1).toordinal() - 1
    month_before_end = date.fromordinal(month_before)
    campaigns = ", ".join(
        f"({_lit(cid)}, {_lit(name)}, {_lit(segment)}, {least}, {days}, {_lit(lift)}, "
        f"{_lit(plan.global_share + plan.share_of(segment))})"
        for cid, name, segment, least, days, lift in PLANTED_CAMPAIGNS
    )
    draw = holdouts.duckdb_draw_sql(plan.salt, "h.customer_id") if plan.active else "1.0"
    return f"""
        WITH campaigns(campaign_id, campaign_name, segment, least_orders, within_days, lift,
                       held_share) AS (VALUES {campaigns}),
        history AS (
            SELECT customer_id, count(DISTINCT order_id) AS orders,
                {_lit(month_before_end)} - max(order_date) AS recency
            FROM read_parquet({_lit(str(orders))})
            WHERE order_date <= {_lit(month_before_end)}
            GROUP BY customer_id
        ), engaged AS (
            SELECT customer_id, count(*) AS events
            FROM read_parquet({_lit(str(events))})
            WHERE event_at::DATE > {_lit(month_before_end)} - 95
              AND event_at::DATE <= {_lit(month_before_end)}
            GROUP BY customer_id
        ), looking_alike AS (
            SELECT c.*, h.customer_id, {draw} AS draw
            FROM history h
            LEFT JOIN engaged e USING (customer_id)
            JOIN campaigns c
                ON h.orders >= c.least_orders AND h.recency BETWEEN 31 AND c.within_days
            WHERE NOT (h.recency > 90 AND coalesce(e.events, 0) >= 4)
              AND (c.segment = 'loyal_repeat' OR NOT (h.orders >= 2 AND h.recency <= 365))
        )
        SELECT campaign_id, campaign_name, segment, lift, customer_id,
            draw < held_share AS held_out
        FROM looking_alike
        """


def _planted_sql(config: GeneratorConfig, orders: Path, events: Path) -> list[str]:
    """The planted lift campaigns: their audiences (the look-alikes less the held-out
    customers, as a campaign tool asking the firewall sends) and the purchases the first
    one causes."""
    sent = planted_send_date(config)
    # Planted order numbers start after every customer's own (n * 100 + k, k < 100).
    first_planted = first_planted_order(config)
    return [
        f"""
        CREATE TEMP TABLE planted_sends AS
        SELECT campaign_id, campaign_name, segment, lift, customer_id,
            row_number() OVER (ORDER BY campaign_id, customer_id) AS i
        FROM ({_look_alikes_sql(config, orders, events)})
        WHERE NOT held_out
        """,
        f"""
        CREATE TEMP TABLE planted_orders AS
        SELECT {first_planted} + i AS onum, customer_id,
            {_lit(sent)} + 1 + floor(uni(i, 0, 'planted_day') * 20)::INTEGER AS order_date,
            round(least(greatest(lognormal(420.0, 0.95, i, 0, 'planted_amount'), 5.0),
                        {_lit(MAX_AMOUNT)}), 2) AS amount
        FROM planted_sends
        WHERE uni(i, 0, 'planted_buys') < lift
        """,
    ]


def first_planted_order(config: GeneratorConfig) -> int:
    """The first planted order number (its order id is 'O' and this, padded to 10 digits)."""
    return (config.customers + 1) * 100


def planted_send_date(config: GeneratorConfig) -> date:
    end = config.end_date
    return date(end.year, end.month, PLANTED_SEND_DAY)


def planted_look_alikes(out_dir: Path, config: GeneratorConfig) -> list[tuple[str, str, bool]]:
    """(campaign id, customer id, held out) of the planted campaigns' look-alikes in a
    generated folder: the population each planted campaign's lift is measured on."""
    con = duckdb.connect(":memory:")
    try:
        query = _look_alikes_sql(
            config, Path(out_dir) / "orders.parquet", Path(out_dir) / "engagement_events.parquet"
        )
        return con.execute(f"SELECT campaign_id, customer_id, held_out FROM ({query})").fetchall()
    finally:
        con.close()


def _planted_sends_sql(config: GeneratorConfig) -> str:
    sent = planted_send_date(config)
    return f"""
    SELECT pad_id('SND', 900000000000 + i, 1000000000000) AS send_id, campaign_id,
        campaign_name, customer_id, {_lit(PLANTED_SENDER)} AS sender_id, 'sms' AS channel,
        segment AS targeted_segment,
        {_lit(sent)}::TIMESTAMP + INTERVAL 10 HOUR + to_seconds(i % 3600) AS sent_at
    FROM planted_sends
    """


def _plants_lift(config: GeneratorConfig) -> bool:
    """Planted order ids must stay within 10 digits (every customer but the largest sizes)."""
    return config.plant_lift and ((config.customers + 1) * 100 + config.customers) * 3 < 10**10


_WITH_PLANTED_ORDERS = """
SELECT * FROM read_parquet({orders})
UNION ALL
SELECT pad_id('L', onum * 3, 10000000000) AS order_line_id,
    pad_id('O', onum, 10000000000) AS order_id, customer_id, order_date, amount,
    'rings' AS category
FROM planted_orders
"""


def _sends_view(config: GeneratorConfig) -> str:
    """Sends, as a view: read once for campaign_sends and once for the responses."""
    return f"""
    CREATE VIEW sends AS
    WITH picked AS (
        SELECT c.seq, c.campaign_id, c.campaign_name, c.sender_id, c.channel,
            c.targeted_segment, c.sent_date, slot.n - 1 AS i,
            1 + (c.stride * (slot.n - 1) + c.offset_) % {config.customers} AS n
        FROM campaigns_final c JOIN customer_numbers slot ON slot.n <= c.audience
    )
    SELECT *,
        sent_date::TIMESTAMP
            + to_seconds(floor(9 * 3600 + uni(seq, i, 'send_time') * 3 * 3600)::BIGINT) AS sent_at
    FROM (SELECT *, c_signup(n) AS signup FROM picked)
    WHERE signup <= sent_date AND (channel <> 'email' OR c_consent(n))
    """


_CAMPAIGN_SENDS = """
SELECT pad_id('SND', seq * 100000000 + i, 1000000000000) AS send_id, campaign_id, campaign_name,
    c_id(n) AS customer_id, sender_id, channel, targeted_segment, sent_at
FROM sends
"""


def _events_sql() -> str:
    """Background engagement in bursts (consideration periods, one just before the first
    purchase), plus answers to campaign sends. Nothing before signup or after dropout."""
    collector = {"email_open": 0.30, "email_click": 0.10, "site_visit": 0.24}
    collector |= {"store_visit": 0.24, "reply": 0.12}
    others = {"email_open": 0.38, "email_click": 0.10, "site_visit": 0.30}
    others |= {"store_visit": 0.13, "reply": 0.09}
    no_email = {"site_visit": 0.60, "store_visit": 0.25, "reply": 0.15}
    u = "uni(n, k, 'event_type')"
    response_p = {"collector": 0.12, "casual": 0.07, "prospect": 0.05}
    response = " ".join(f"WHEN {_lit(p)} THEN {_lit(v)}" for p, v in response_p.items())
    return f"""
    WITH cust AS (
        SELECT n, persona, consent, has_first_purchase, first_purchase, observed_from,
            active_end, observed_days,
            least(poissonish(events_per_year * observed_days / 365.25, n, 0, 'events'),
                  {MAX_EVENTS}) AS events
        FROM customer_latent
    ), slots AS (
        SELECT n, persona, consent, has_first_purchase, first_purchase, observed_from,
            active_end, observed_days, events, unnest(range(events)) AS k
        FROM cust
        WHERE events > 0
    ), bursts AS (
        SELECT *, floor(uni(n, k, 'burst') * (1 + events // 5))::INTEGER AS burst FROM slots
    ), dated AS (
        SELECT *,
            least(greatest(
                CASE WHEN burst = 0 AND has_first_purchase THEN first_purchase - 5
                    ELSE observed_from
                        + floor(uni(n, burst, 'burst_centre') * observed_days)::INTEGER
                END + floor((uni(n, k, 'burst_offset') - 0.5) * 42)::INTEGER,
                observed_from), active_end) AS event_date,
            CASE WHEN NOT consent THEN {_pick(u, no_email)}
                WHEN persona = 'collector' THEN {_pick(u, collector)}
                ELSE {_pick(u, others)} END AS event_type
        FROM bursts
    ), background AS (
        SELECT pad_id('E', n * 1000 + k, 1000000000000) AS event_id, n, event_type,
            CASE event_type WHEN 'site_visit' THEN 'web' WHEN 'store_visit' THEN 'store'
                WHEN 'reply' THEN CASE WHEN consent AND uni(n, k, 'reply_channel') < 0.4
                                      THEN 'email' ELSE 'whatsapp' END
                ELSE 'email' END AS channel,
            event_date::TIMESTAMP
                + to_seconds(floor(8 * 3600 + uni(n, k, 'event_time') * 14 * 3600)::BIGINT)
                AS event_at
        FROM dated
    ), answered AS (
        SELECT seq, i, n, channel AS send_channel,
            sent_at + to_seconds(floor(least(exponential(2.0 * 86400, seq, i, 'response_delay'),
                                             14 * 86400 - 1))::BIGINT) AS event_at,
            c_active_end(n, signup, persona) AS active_end
        FROM (SELECT *, c_persona(n) AS persona FROM sends)
        WHERE uni(seq, i, 'responds') < CASE persona {response} END
    ), responses AS (
        SELECT pad_id('E', 500000000000 + seq * 100000000 + i, 1000000000000) AS event_id, n,
            CASE send_channel
                WHEN 'email' THEN CASE WHEN uni(seq, i, 'response_type') < 0.75
                                      THEN 'email_click' ELSE 'reply' END
                WHEN 'whatsapp' THEN 'reply'
                ELSE CASE WHEN uni(seq, i, 'response_type') < 0.5
                          THEN 'store_visit' ELSE 'site_visit' END
            END AS event_type,
            send_channel, event_at
        FROM answered
        WHERE event_at::DATE <= active_end
    )
    SELECT event_id, c_id(n) AS customer_id, event_type, channel, event_at FROM background
    UNION ALL
    SELECT event_id, c_id(n) AS customer_id, event_type,
        CASE event_type WHEN 'site_visit' THEN 'web' WHEN 'store_visit' THEN 'store'
            WHEN 'reply' THEN CASE WHEN send_channel = 'whatsapp' THEN 'whatsapp' ELSE 'email' END
            ELSE 'email' END AS channel,
        event_at
    FROM responses
    """


# --------------------------------------------------------------------------------------
# Running it


def _repeat_rate(con: duckdb.DuckDBPyConnection, config: GeneratorConfig) -> float:
    """Per-year repeat-purchase rate that makes the expected lines per customer equal
    config.orders_per_customer.

    Solved on a small histogram of exposure (customers per rate multiplier and days alive),
    taking the per-customer cap on candidates into account: a geometric count with mean m
    capped at C has mean m * (1 - q^C), q = m / (1 + m). The histogram holds exact integer
    counts, so the rate, and with it every draw, is identical on every run.
    """
    rows = con.execute(
        """SELECT rate_multiplier, repeat_days, has_first_purchase, count(*)
           FROM customer_latent GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    first = sum(count for _, _, has_first, count in rows if has_first)
    exposure = [(mult * days, count) for mult, days, _, count in rows if mult and days]
    mean_lines = sum(k * p for k, p in LINES_PER_ORDER.items())
    target = config.customers * config.orders_per_customer / mean_lines - first
    w_max = max(SEASON_WEIGHTS)
    kept = sum(SEASON_WEIGHTS) / len(SEASON_WEIGHTS) / w_max  # share surviving thinning
    if target <= 0 or not exposure:
        return 0.0

    def expected_repeats(rate: float) -> float:
        total = 0.0
        for weight, count in exposure:
            m = rate * w_max * weight / 365.25
            total += count * m * (1.0 - (m / (1.0 + m)) ** MAX_REPEAT_ORDERS)
        return total * kept

    low, high = 0.0, 1.0
    while expected_repeats(high) < target and high < 1e6:  # beyond: the cap binds
        low, high = high, high * 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if expected_repeats(middle) < target else (low, middle)
    return (low + high) / 2


def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> int:
    """Stream a query into one zstd Parquet file. It is written beside the target and then
    renamed, so a reader never sees a half-written file."""
    partial = target.with_name(target.name + ".partial")
    row = con.execute(
        f"COPY ({query}) TO {_lit(str(partial))} (FORMAT parquet, COMPRESSION zstd)"
    ).fetchone()
    partial.replace(target)
    return int(row[0]) if row else 0


def generate(out_dir: Path, config: GeneratorConfig, progress: bool = True) -> dict[str, int]:
    """Write customers, orders, engagement_events, campaign_sends, team_members; return row counts per table.

    Each table is one Parquet file, `out_dir/<table>.parquet`, replaced atomically. The same
    config always yields the same table contents (the row order within a file may differ).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    spill = Path(tempfile.mkdtemp(prefix=".generator-spill-", dir=out_dir))
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET memory_limit = {_lit(MEMORY_LIMIT)}")
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"SET temp_directory = {_lit(str(spill))}")
        for statement in _macros(config):
            con.execute(statement)
        # A table, not range(): DuckDB scans a table with all threads, range() with one.
        con.execute(
            "CREATE TEMP TABLE customer_numbers AS "
            f"SELECT range AS n FROM range(1, {config.customers + 1})"
        )
        con.execute(_customer_latent(config))
        rate: list[float] = []

        def store(table: str, query: str) -> None:
            counts[table] = _copy(con, query, out_dir / f"{table}.parquet")

        def planted() -> None:
            if not _plants_lift(config):
                return
            orders = out_dir / "orders.parquet"
            for statement in _planted_sql(config, orders, out_dir / "engagement_events.parquet"):
                con.execute(statement)
            store("orders", _WITH_PLANTED_ORDERS.format(orders=_lit(str(orders))))

        def sends() -> str:
            if not _plants_lift(config):
                return _CAMPAIGN_SENDS
            return f"{_CAMPAIGN_SENDS} UNION ALL {_planted_sends_sql(config)}"

        def campaigns() -> None:
            con.execute(_campaigns_sql(config))
            con.execute(_team_members_sql(config))
            con.execute(_CAMPAIGN_SENDERS)
            con.execute(_sends_view(config))

        steps: list[tuple[str, Callable[[], None]]] = [
            ("calibrate", lambda: rate.append(_repeat_rate(con, config))),
            ("campaigns", campaigns),
            ("customers", lambda: store("customers", _customers_sql())),
            ("orders", lambda: store("orders", _orders_sql(rate[0]))),
            ("engagement_events", lambda: store("engagement_events", _events_sql())),
            ("planted lift", planted),
            ("campaign_sends", lambda: store("campaign_sends", sends())),
            ("team_members", lambda: store("team_members", _TEAM_MEMBERS)),
        ]
        with tqdm(total=len(steps), desc="generate", unit="step", disable=not progress) as bar:
            for name, step in steps:
                bar.set_postfix_str(name)
                step()
                bar.update(1)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return {table: counts[table] for table in TABLES}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: generate the example jeweller into a directory of Parquet files."""
    defaults = GeneratorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m segment_cadence.example.generator",
        description="Generate reproducible synthetic jeweller data as Parquet.",
    )
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument("--end-month", default=defaults.end_month, help="last month, YYYY-MM")
    parser.add_argument("--history-months", type=int, default=defaults.history_months)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--orders-per-customer",
        type=float,
        default=defaults.orders_per_customer,
        help="mean order lines per customer over the history",
    )
    parser.add_argument("--out", default="var/raw", help="output directory (default: var/raw)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = GeneratorConfig(
            customers=args.customers,
            end_month=args.end_month,
            history_months=args.history_months,
            seed=args.seed,
            orders_per_customer=args.orders_per_customer,
        )
    except ValueError as error:
        parser.error(str(error))
    started = time.perf_counter()
    counts = generate(Path(args.out), config, progress=not args.no_progress)
    print(f"wrote {args.out} in {time.perf_counter() - started:.1f}s:")
    for table, rows in counts.items():
        print(f"  {table:<20} {rows:>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
