{#- The segment dictionary of each definition version, one row per segment (retired ones
    included): validated and approved in Python (segment_cadence/defs/dictionary, the
    governance/segment_dictionary asset) and passed here as the var dictionary_segments.
    Readers join it on definition_version to learn what a published month was made with. -#}
{{ config(**keyed_table_config("definition_version")) }}

select
    {{ text_literal(cadence_var("definition_version")) }} as definition_version,
    segment_id,
    segment_name,
    description,
    owner,
    priority,
    rule,
    paused,
    pause_reason,
    min_size,
    status,
    is_fallback

from (
    {{ vars_rows(cadence_var("dictionary_segments"), {
        "segment_id": "varchar", "segment_name": "varchar", "description": "varchar",
        "owner": "varchar", "priority": "integer", "rule": "varchar", "paused": "boolean",
        "pause_reason": "varchar", "min_size": "integer", "status": "varchar",
        "is_fallback": "boolean"}) }}
) as segments
