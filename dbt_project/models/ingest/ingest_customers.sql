{#- The customers that pass the ingest rules (macros/ingest.sql), typed and under
    their canonical names: raw.customers, read by models/staging. -#}
{{ config(alias="customers", schema="raw", materialized="table") }}

{{ ingest_accepted("customers") }}
