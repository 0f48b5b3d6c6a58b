{#- The published customer features of each month's publication in force, the one the ledger
    names (macros/publication.sql): every feature column of the build, for the quarterly
    re-fit and drift against earlier months. A view, so nothing is copied twice. -#}
{{ config(materialized="view", alias="customer_features") }}

select
    {{ columns_except(ref("store_customer_features"), ["publication_id"], "store") }}
from {{ in_force("store_customer_features") }}
