{#- How the per-version dictionary is kept: one set of rows per definition version, replaced
    whole when that version is recorded again (its ungoverned names, descriptions or owners
    may have changed), the other versions kept. DuckDB: delete+insert on definition_version.
    Spark: a Parquet table partitioned by definition_version, written with insert_overwrite.
    The contract (types spelled the DuckDB way) is enforced on DuckDB. -#}
{% macro version_table_config() -%}
    {{- return(adapter.dispatch("version_table_config", "segment_cadence")()) -}}
{%- endmacro %}

{% macro default__version_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "delete+insert",
                "unique_key": "definition_version", "full_refresh": false,
                "on_schema_change": "append_new_columns"}) -}}
{%- endmacro %}

{% macro spark__version_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "insert_overwrite",
                "partition_by": ["definition_version"], "file_format": "parquet",
                "full_refresh": false, "on_schema_change": "append_new_columns",
                "contract": {"enforced": false}}) -}}
{%- endmacro %}
