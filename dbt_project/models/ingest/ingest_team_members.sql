{#- The team members that pass the ingest rules (macros/ingest.sql), typed and under
    their canonical names: raw.team_members, read by models/staging. -#}
{{ config(alias="team_members", schema="raw", materialized="table") }}

{{ ingest_accepted("team_members") }}
