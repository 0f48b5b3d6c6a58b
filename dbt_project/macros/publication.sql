{#- Publishing a month (models/published). dbt runs each model in a transaction of its own, so
    the tables consumers read cannot be replaced together. Instead:

    - the store models (schema published_store) keep each publication's rows, keyed by
      (month_end, publication_id): writing a new publication adds rows beside the ones in
      force and changes nothing a reader sees;
    - the ledger (published.publications, one row per month) names the publication in force.
      It runs after every store model, and replacing its row for the month is the single
      commit point: consumers see the old month whole until then, the new month whole after;
    - the views (published.segment_membership, ...) are the store rows of the publication the
      ledger names. The superseded publication's rows are deleted in the ledger's own
      transaction (its post-hook), never before it commits.

    A refresh killed anywhere before the ledger's commit leaves the store with rows no
    ledger row names: invisible, and deleted when the month is next published. -#}

{#- The publication being written, passed by the pipeline (publish.PublicationRequest). -#}
{% macro publication_id() -%}
    '{{ cadence_var("publication_id") }}'
{%- endmacro %}

{#- Store models. DuckDB: appended, after the pre-hook removed rows of this very publication
    (a retried step of the same run). Spark: Parquet partitioned by (month_end,
    publication_id), written with insert_overwrite, which replaces only this publication's
    partition and leaves the one in force as it is. -#}
{% macro store_table_config() -%}
    {{- return(adapter.dispatch("store_table_config", "segment_cadence")()) -}}
{%- endmacro %}

{% macro default__store_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "append",
                "full_refresh": false, "on_schema_change": "append_new_columns",
                "pre_hook": "{{ replace_publication() }}"}) -}}
{%- endmacro %}

{% macro spark__store_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "insert_overwrite",
                "partition_by": ["month_end", "publication_id"], "file_format": "parquet",
                "full_refresh": false, "on_schema_change": "append_new_columns"}) -}}
{%- endmacro %}

{% macro replace_publication() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where month_end = {{ month_end() }} and publication_id = {{ publication_id() }}
    {%- endif -%}
{%- endmacro %}

{#- The ledger. DuckDB: delete+insert on month_end (a few rows), its post-hook deleting the
    superseded publication's store rows inside the same transaction. Spark has no
    transaction across tables: the ledger is a Parquet table partitioned by month_end and
    the month's partition is overwritten in one write (the commit point there too, as far
    as the file system makes one write atomic); the superseded partitions are dropped after
    it (see drop_superseded_publications). -#}
{% macro ledger_table_config() -%}
    {{- return(adapter.dispatch("ledger_table_config", "segment_cadence")()) -}}
{%- endmacro %}

{% macro default__ledger_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "delete+insert",
                "unique_key": "month_end", "full_refresh": false,
                "on_schema_change": "append_new_columns",
                "pre_hook": "{{ stop_at_crash_point('publish_transaction') }}",
                "post_hook": "{{ drop_superseded_publications() }}"}) -}}
{%- endmacro %}

{% macro spark__ledger_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "insert_overwrite",
                "partition_by": ["month_end"], "file_format": "parquet", "full_refresh": false,
                "on_schema_change": "append_new_columns",
                "pre_hook": "{{ stop_at_crash_point('publish_transaction') }}",
                "post_hook": "{{ drop_superseded_publications() }}",
                "contract": {"enforced": false}}) -}}
{%- endmacro %}

{#- The store models, by name (one list, read by the ledger's clean-up). -#}
{% macro store_models() -%}
    {{- return(["store_segment_membership", "store_segment_transitions", "store_segment_kpis",
                "store_customer_features"]) -}}
{%- endmacro %}

{% macro drop_superseded_publications() -%}
    {{- return(adapter.dispatch("drop_superseded_publications", "segment_cadence")()) -}}
{%- endmacro %}

{% macro default__drop_superseded_publications() -%}
    {%- for model in store_models() %}
        {#- the table itself, also under `dbt run --empty` (where ref is a subquery) -#}
        {%- set store = ref(model) %}
        delete from {{ api.Relation.create(database=store.database, schema=store.schema,
                                           identifier=store.identifier) }}
        where month_end = {{ month_end() }} and publication_id <> {{ publication_id() }};
    {%- endfor %}
{%- endmacro %}

{#- Spark: Parquet tables take no DELETE; each superseded publication of the month is a
    partition, dropped one by one (a reader in between sees the ledger's publication only). -#}
{% macro spark__drop_superseded_publications() -%}
    {%- if execute -%}
        {%- for model in store_models() -%}
            {%- set partitions = run_query("show partitions " ~ ref(model)) -%}
            {%- for row in partitions.rows -%}
                {%- set spec = row[0] -%}
                {%- if spec.startswith("month_end=" ~ cadence_var("month_end") ~ "/")
                       and spec != "month_end=" ~ cadence_var("month_end") ~ "/publication_id=" ~ cadence_var("publication_id") -%}
                    {%- do run_query("alter table " ~ ref(model) ~ " drop if exists partition (month_end = '"
                                     ~ cadence_var("month_end") ~ "', publication_id = '"
                                     ~ spec.split("publication_id=")[1] ~ "')") -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{#- The dbt half of the crash point before the ledger commit (segment_cadence/platform/
    crash_points.py). dbt cannot kill itself from SQL: when a test asks for this point, the
    ledger stops here, before it writes, and the publishing step, which runs dbt, then kills
    its own process. What is left is what a kill at this moment leaves: the store written,
    the ledger not. Unset, it renders nothing. -#}
{% macro stop_at_crash_point(name) -%}
    {%- if execute and env_var("SEGMENT_CADENCE_CRASH_AT", "") == name -%}
        {{ exceptions.raise_compiler_error("crash point " ~ name ~ ": stopped before the ledger commit") }}
    {%- endif -%}
{%- endmacro %}

{#- The columns of a relation but the given ones, for a view that hides its key columns. -#}
{% macro columns_except(relation, excluded, prefix) -%}
    {%- if not execute -%}{{ return(prefix ~ ".*") }}{%- endif -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- if column.name | lower not in excluded -%}
            {%- do names.append(prefix ~ "." ~ adapter.quote(column.name)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(names | join(", ")) -}}
{%- endmacro %}

{#- The store rows of the publication the ledger names, for one store model. -#}
{% macro in_force(store_model) -%}
    {{ ref(store_model) }} as store
    inner join {{ ref("publications") }} as ledger
        on store.month_end = ledger.month_end and store.publication_id = ledger.publication_id
{%- endmacro %}

{#- The consumer-facing views. Their contracts (types spelled the DuckDB way) are enforced
    on DuckDB; Spark builds the same casts. -#}
{% macro published_view_config(alias) -%}
    {{- return(adapter.dispatch("published_view_config", "segment_cadence")(alias)) -}}
{%- endmacro %}

{% macro default__published_view_config(alias) -%}
    {{- return({"materialized": "view", "alias": alias}) -}}
{%- endmacro %}

{% macro spark__published_view_config(alias) -%}
    {{- return({"materialized": "view", "alias": alias, "contract": {"enforced": false}}) -}}
{%- endmacro %}
