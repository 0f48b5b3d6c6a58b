{#- The orders that pass the ingest rules (macros/ingest.sql), typed and under
    their canonical names: raw.orders, read by models/staging. -#}
{{ config(alias="orders", schema="raw", materialized="table") }}

{{ ingest_accepted("orders") }}
