"""A realistic, seeded jeweller: customers, order lines, engagement, campaign sends, team.

Everything is generated in DuckDB SQL, so 10 million customers and 100 million order lines
take minutes, not hours. Randomness comes from hashing (seed, row, purpose), never from a
global random state, so the same seed gives the same data whatever the thread count.

What makes it a jeweller rather than noise:
- high-ticket, low-frequency buying: lognormal amounts around a median of 450 with a long
  tail, most customers buying one to three times in three years, a minority of collectors
  buying often; about a fifth never buy at all;
- the calendar: festive (Dhanteras and Diwali in October and November), wedding seasons
  (November to February, April and May) and December peak; summer is quiet;
- lapse: each customer has a latent "active until" date after which they neither buy nor
  engage (the process BG/NBD is built to detect), and consideration bursts of browsing and
  store visits without a purchase (the Evaluation segment);
- governance problems to find: a few campaigns target paused segments and a few sends come
  from team members in their first 30 days.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
from tqdm import tqdm

from segment_cadence.months import month_end as last_day
from segment_cadence.months import parse_month

TABLES = ("team_members", "customers", "orders", "engagement_events", "campaign_sends")
# Relative order volume by calendar month (thinning weights, max 1).
SEASON = {1: 0.75, 2: 0.7, 3: 0.45, 4: 0.65, 5: 0.6, 6: 0.35, 7: 0.3, 8: 0.4, 9: 0.45,
          10: 0.9, 11: 1.0, 12: 0.85}  # fmt: skip
RULED_TARGETS = ("vip_collectors", "loyal_repeat", "new_first_purchase", "at_risk", "occasional",
                 "prospects", "dormant")  # fmt: skip
PAUSED_TARGETS = ("post_purchase_cooldown", "evaluation")


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int = 20_000
    end_month: str = "2026-10"
    history_months: int = 36
    seed: int = 42
    orders_per_customer: float = 3.0  # mean order lines per customer over the history
    paused_campaign_share: float = 0.04
    campaigns_per_month: int = 3
    audience_share: float = 0.03

    @property
    def end(self) -> date:
        return last_day(parse_month(self.end_month))

    @property
    def start(self) -> date:
        first = parse_month(self.end_month)
        for _ in range(self.history_months - 1):
            first = (first - timedelta(days=1)).replace(day=1)
        return first


def _macros(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    # u(id, salt): uniform in [0, 1) from a hash; z(id, salt): standard normal (Box-Muller).
    con.execute(
        f"create or replace macro u(k, salt) as (hash({seed}, k, salt) % 1000000007) / 1000000007.0"
    )
    con.execute(
        "create or replace macro z(k, salt) as "
        "sqrt(-2 * ln(1 - u(k, salt || 'a'))) * cos(2 * pi() * u(k, salt || 'b'))"
    )
    weights = " ".join(f"when {m} then {w}" for m, w in SEASON.items())
    con.execute(f"create or replace macro season(d) as case month(d) {weights} end")


def _team_members(config: GeneratorConfig) -> str:
    end_start = parse_month(config.end_month)
    names = ["Asha", "Vikram", "Meera", "Rohan", "Priya", "Arjun", "Kavya", "Sanjay", "Divya",
             "Nikhil", "Tara", "Kabir"]  # fmt: skip
    teams = ["crm", "growth", "stores", "ecommerce"]
    rows = []
    for index, name in enumerate(names, start=1):
        if index == 11:  # joined last month: some of their sends fall in their first 30 days
            joined = end_start - timedelta(days=20)
        elif index == 12:  # joined this month
            joined = end_start + timedelta(days=3)
        else:
            joined = config.start - timedelta(days=400 + 90 * index)
        rows.append(f"('S{index:03d}', '{name}', '{teams[index % 4]}', date '{joined}')")
    return "select * from (values " + ", ".join(rows) + ") as t(sender_id, name, team, joined_date)"


def _customers(config: GeneratorConfig) -> str:
    span = (config.end - config.start).days + 1
    return f"""
        with ids as (select range as i from range(1, {config.customers + 1})),
        drawn as (
            select i, u(i, 'type') as t, u(i, 'region') as rg, u(i, 'age') as ag,
                   u(i, 'lang') as lg, u(i, 'signup') as su, u(i, 'consent') as co,
                   u(i, 'life') as lf, u(i, 'rate') as rt
            from ids
        )
        select
            i,
            'C' || lpad(i::varchar, 8, '0') as customer_id,
            (date '{config.start}' - interval 365 day
                + to_days(floor(su * ({span} + 365))::int))::date as signup_date,
            case when rg < 0.30 then 'North' when rg < 0.55 then 'South' when rg < 0.75 then 'West'
                 when rg < 0.90 then 'East' else 'Central' end as region,
            case when ag < 0.08 then '18-24' when ag < 0.33 then '25-34' when ag < 0.60 then '35-44'
                 when ag < 0.80 then '45-54' when ag < 0.93 then '55-64' else '65+' end as age_band,
            case when lg < 0.55 then 'en' when lg < 0.75 then 'hi' when lg < 0.85 then 'ta'
                 when lg < 0.92 then 'te' when lg < 0.97 then 'bn' else 'mr' end as language,
            co < 0.85 as email_consent,
            case when t < 0.18 then 'prospect' when t < 0.50 then 'one_timer'
                 when t < 0.92 then 'regular' else 'collector' end as kind,
            -- gamma(1)-distributed purchase rate per year (heterogeneity, as BG/NBD assumes)
            case when t < 0.18 then 0.0 when t < 0.50 then 0.0
                 when t < 0.92 then 0.9 else 3.0 end * -ln(1 - rt) as yearly_rate,
            -- exponential dropout: mean active life in days after sign-up
            300 - ln(1 - lf) * case when t < 0.92 then 1200 else 3000 end as active_days
        from drawn
    """


def _orders(config: GeneratorConfig) -> str:
    mean_keep = sum(SEASON.values()) / len(SEASON)
    scale = config.orders_per_customer / 1.8  # measured: scale 1 gives ~1.8 lines per customer
    return f"""
        with active as (
            select i, customer_id, kind, yearly_rate,
                   greatest(signup_date, date '{config.start}') as a0,
                   least((signup_date + to_days(active_days::int))::date, date '{config.end}') as a1
            from gen_customers where kind <> 'prospect'
        ),
        counted as (
            select *, case
                when a1 < a0 then 0
                when kind = 'one_timer' then least(3, floor(1.3 * {scale} / {mean_keep} + u(i, 'n')))::int
                else least(999, floor({scale} * yearly_rate * ((a1 - a0) + 1) / 365.25
                                      / {mean_keep} + u(i, 'n')))::int
            end as n
            from active
        ),
        candidates as (
            select i, customer_id, kind, a0, a1, unnest(range(n)) as k from counted where n > 0
        ),
        dated as (
            select i, customer_id, kind, k, i * 1000 + k as ok,
                   (a0 + to_days(floor(u(i * 1000 + k, 'day') * ((a1 - a0) + 1))::int))::date
                       as order_date
            from candidates
        ),
        kept as (
            select *, 1 + (u(ok, 'l2') < 0.18)::int + (u(ok, 'l3') < 0.05)::int as lines
            from dated where u(ok, 'keep') < season(order_date)
        ),
        lines as (select *, unnest(range(lines)) as line from kept),
        priced as (
            select customer_id, order_date, ok, line, ok * 10 + line as lk,
                   u(ok * 10 + line, 'cat') as c,
                   case when kind = 'collector' then 1.7 else 1.0 end as uplift
            from lines
        )
        select
            'L' || lpad(lk::varchar, 12, '0') as order_line_id,
            'O' || lpad(ok::varchar, 11, '0') as order_id,
            customer_id,
            order_date,
            round(exp(ln(450) + 0.95 * z(lk, 'amt')) * uplift * case
                when c < 0.08 then 3.0 when c >= 0.90 then 0.15 else 1.0 end, 2) as amount,
            case when c < 0.08 then 'bridal' when c < 0.36 then 'rings' when c < 0.54 then 'necklaces'
                 when c < 0.74 then 'earrings' when c < 0.84 then 'bracelets'
                 when c < 0.90 then 'watches' else 'repairs' end as category
        from priced
    """


def _engagement(config: GeneratorConfig) -> str:
    return f"""
        with active as (
            select i, customer_id, kind,
                   greatest(signup_date, date '{config.start}') as a0,
                   least((signup_date + to_days(active_days::int + 60))::date, date '{config.end}') as a1
            from gen_customers
        ),
        counted as (
            select *, case when a1 < a0 then 0 else least(500, floor(
                case kind when 'collector' then 9 when 'regular' then 3.5 when 'one_timer' then 2
                          else 2.5 end * ((a1 - a0) + 1) / 365.25 + u(i, 'ne')))::int end as n,
                -- a consideration burst: several visits across channels in a few weeks
                u(i, 'burst') < 0.22 and a1 >= a0 as bursts
            from active
        ),
        plain as (
            select i, customer_id, a0, a1, unnest(range(n)) as k, false as burst from counted
        ),
        burst as (
            select i, customer_id,
                   (a0 + to_days(floor(u(i, 'bstart') * ((a1 - a0) + 1))::int))::date as a0,
                   a1, unnest(range(5 + floor(u(i, 'blen') * 4)::int)) + 500 as k, true as burst
            from counted where bursts
        ),
        events as (
            select *, i * 1000 + k as ek from plain
            union all
            select *, i * 1000 + k as ek from burst
        ),
        timed as (
            select customer_id, ek, u(ek, 'type') as t,
                   (case when burst then least(a0 + to_days(floor(u(ek, 'd') * 35)::int), a1)
                         else a0 + to_days(floor(u(ek, 'd') * ((a1 - a0) + 1))::int) end)::timestamp
                       + to_seconds(floor(u(ek, 's') * 86400)::bigint) as event_at,
                   burst
            from events
        )
        select
            'E' || lpad(ek::varchar, 12, '0') as event_id,
            customer_id,
            case when burst and t < 0.45 then 'site_visit' when burst and t < 0.80 then 'store_visit'
                 when burst then 'email_click'
                 when t < 0.45 then 'email_open' when t < 0.60 then 'email_click'
                 when t < 0.85 then 'site_visit' when t < 0.95 then 'store_visit'
                 else 'reply' end as event_type,
            case when burst and t < 0.45 then 'web' when burst and t < 0.80 then 'store'
                 when burst then 'email'
                 when t < 0.60 then 'email' when t < 0.85 then 'web' when t < 0.95 then 'store'
                 when t < 0.975 then 'email' else 'whatsapp' end as channel,
            event_at
        from timed
    """


def _campaigns(config: GeneratorConfig) -> str:
    n = config.history_months * config.campaigns_per_month
    ruled = "[" + ", ".join(f"'{s}'" for s in RULED_TARGETS) + "]"
    paused = "[" + ", ".join(f"'{s}'" for s in PAUSED_TARGETS) + "]"
    return f"""
        with campaigns as (
            select range as c,
                   (date '{config.start}' + to_months((range // {config.campaigns_per_month})::int)
                    + to_days(floor(u(range, 'cday') * 27)::int))::date as sent_date
            from range({n})
        )
        select
            c,
            'K' || lpad(c::varchar, 5, '0') as campaign_id,
            case
                when month(sent_date) in (10, 11) and c % 3 = 0 then 'Diwali Sparkle ' || year(sent_date)
                when month(sent_date) in (12, 1, 2) and c % 3 = 0 then 'Wedding Season Edit ' || year(sent_date)
                when month(sent_date) in (4, 5) and c % 3 = 0 then 'Akshaya Tritiya Gold ' || year(sent_date)
                when month(sent_date) = 2 and c % 3 = 1 then 'Valentine Rings ' || year(sent_date)
                else 'New Arrivals ' || strftime(sent_date, '%B %Y')
            end as campaign_name,
            case when u(c, 'paused') < {config.paused_campaign_share}
                 then {paused}[1 + floor(u(c, 'ps') * {len(PAUSED_TARGETS)})::int]
                 else {ruled}[1 + floor(u(c, 'rs') * {len(RULED_TARGETS)})::int] end as targeted_segment,
            case when u(c, 'ch') < 0.6 then 'email' when u(c, 'ch') < 0.85 then 'whatsapp'
                 else 'sms' end as channel,
            sent_date
        from campaigns
    """


def _sends(config: GeneratorConfig) -> str:
    return f"""
        with audience as (
            select c.*, g.customer_id, g.i
            from gen_campaigns c
            join gen_customers g
              on g.signup_date <= c.sent_date
             and hash({config.seed}, c.c, g.i, 'aud') % 100000 < {int(config.audience_share * 100000)}
        ),
        senders as (
            -- new team members send a share of the campaigns once they have joined
            select a.*,
                   case when exists (select 1 from gen_team t where t.sender_id = 'S012'
                                     and a.sent_date >= t.joined_date) and u(a.c, 'new') < 0.5
                        then 'S012'
                        when exists (select 1 from gen_team t where t.sender_id = 'S011'
                                     and a.sent_date >= t.joined_date) and u(a.c, 'new') < 0.5
                        then 'S011'
                        else 'S' || lpad((1 + floor(u(a.c, 'sender') * 10))::int::varchar, 3, '0')
                   end as sender_id
            from audience a
        )
        select
            'M' || lpad((c * 100000000 + i)::varchar, 14, '0') as send_id,
            campaign_id, campaign_name, customer_id, sender_id, channel, targeted_segment,
            sent_date::timestamp + to_seconds((9 * 3600 + floor(u(c, 'hour') * 36000))::bigint)
                as sent_at
        from senders
    """


def generate(out_dir: Path, config: GeneratorConfig, progress: bool = True) -> dict[str, int]:
    """Write customers, orders, engagement_events, campaign_sends and team_members as Parquet.

    Returns row counts per table. Same config, same data.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("set preserve_insertion_order = false")
        con.execute("set memory_limit = '10GB'")
        _macros(con, config.seed)
        steps = tqdm(TABLES, desc="generating", unit="table", disable=not progress)
        counts: dict[str, int] = {}
        for table in steps:
            steps.set_postfix_str(table)
            if table == "team_members":
                con.execute(f"create or replace temp table gen_team as {_team_members(config)}")
                query = "select * from gen_team"
            elif table == "customers":
                con.execute(f"create or replace temp table gen_customers as {_customers(config)}")
                query = ("select customer_id, signup_date, region, age_band, language, email_consent "
                         "from gen_customers")  # fmt: skip
            elif table == "orders":
                query = _orders(config)
            elif table == "engagement_events":
                query = _engagement(config)
            else:
                con.execute(f"create or replace temp table gen_campaigns as {_campaigns(config)}")
                query = _sends(config)
            target = out_dir / f"{table}.parquet"
            partial = out_dir / f".{table}.parquet.partial"
            con.execute(
                f"copy ({query}) to '{partial}' (format parquet, compression zstd, row_group_size 1000000)"
            )
            partial.replace(target)
            counts[table] = con.execute(
                f"select count(*) from read_parquet('{target}')"
            ).fetchone()[0]
        return counts
    finally:
        con.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate example jeweller data as Parquet.")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--end-month", default="2026-10")
    parser.add_argument("--history-months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--orders-per-customer", type=float, default=3.0)
    parser.add_argument("--out", default="var/raw")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    config = GeneratorConfig(
        customers=args.customers, end_month=args.end_month, history_months=args.history_months,
        seed=args.seed, orders_per_customer=args.orders_per_customer,
    )  # fmt: skip
    for table, rows in generate(Path(args.out), config, progress=not args.no_progress).items():
        print(f"{table:<20} {rows:>12,}")


if __name__ == "__main__":
    main()
