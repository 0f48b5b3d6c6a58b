{#- How a table kept per key (not per month) is written: one set of rows per value of `key`,
    replaced whole when that key is built again, the other keys kept. The per-version
    dictionary is kept by definition_version (a version recorded again may have new
    ungoverned names, descriptions or owners); the quarterly candidate by quarter. DuckDB:
    delete+insert on the key. Spark: a Parquet table partitioned by the key, written with
    insert_overwrite. The contracts (types spelled the DuckDB way) are enforced on DuckDB. -#}
{% macro keyed_table_config(key) -%}
    {{- return(adapter.dispatch("keyed_table_config", "segment_cadence")(key)) -}}
{%- endmacro %}

{% macro default__keyed_table_config(key) -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "delete+insert",
                "unique_key": key, "full_refresh": false,
                "on_schema_change": "append_new_columns"}) -}}
{%- endmacro %}

{% macro spark__keyed_table_config(key) -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "insert_overwrite",
                "partition_by": [key], "file_format": "parquet",
                "full_refresh": false, "on_schema_change": "append_new_columns",
                "contract": {"enforced": false}}) -}}
{%- endmacro %}
