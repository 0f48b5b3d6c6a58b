{#- The ledger join, for the month just published: the view shows exactly the ledger's
    publication (as many members as the ledger counts, each customer once), and the store
    keeps no other publication of the month once the ledger committed. Rows returned fail. -#}
{{ config(meta={"dagster": {"ref": {"name": "published_segment_membership"}}},
          description="The published month is the ledger's publication, whole and once: its members as counted, no customer twice, no superseded rows left.") }}

with ledger as (

    select customers, publication_id
    from {{ ref("publications") }}
    where month_end = {{ month_end() }}

),

shown as (

    select count(*) as members, count(distinct customer_id) as customers
    from {{ ref("published_segment_membership") }}
    where month_end = {{ month_end() }}

),

kept as (

    select count(distinct publication_id) as publications
    from {{ ref("store_segment_membership") }}
    where month_end = {{ month_end() }}

)

select ledger.customers as counted, shown.members, shown.customers, kept.publications
from ledger cross join shown cross join kept
where shown.members <> ledger.customers
   or shown.customers <> shown.members
   or kept.publications <> 1
