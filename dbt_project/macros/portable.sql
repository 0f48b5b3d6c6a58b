{#- SQL that DuckDB and Spark spell differently, for the analysis models (models/governance,
    models/health). Each macro dispatches like as_double: the DuckDB spelling is the default
    (the models were written for it and its results are the reference), Spark has its own.
    Another engine adds <adapter>__<macro> versions. -#}

{#- The text type: DuckDB's VARCHAR; Spark takes VARCHAR only with a length, STRING is its
    unbounded text. -#}
{% macro string_type() -%}
    {{- return(adapter.dispatch("string_type", "segment_cadence")()) -}}
{%- endmacro %}

{% macro default__string_type() -%}
    varchar
{%- endmacro %}

{% macro spark__string_type() -%}
    string
{%- endmacro %}

{#- A column name of a table, quoted for the engine (double quotes on DuckDB, backticks on
    Spark, where double quotes make a string). -#}
{% macro quoted_column(name) -%}
    {{- adapter.quote(name) -}}
{%- endmacro %}

{#- Whole days from start_date to end_date (positive when end_date is later). -#}
{% macro days_between(start_date, end_date) -%}
    {{- return(adapter.dispatch("days_between", "segment_cadence")(start_date, end_date)) -}}
{%- endmacro %}

{% macro default__days_between(start_date, end_date) -%}
    date_diff('day', {{ start_date }}, {{ end_date }})
{%- endmacro %}

{% macro spark__days_between(start_date, end_date) -%}
    datediff({{ end_date }}, {{ start_date }})
{%- endmacro %}

{#- The distinct values of a text column of the group, sorted, joined with commas. -#}
{% macro distinct_list(expression) -%}
    {{- return(adapter.dispatch("distinct_list", "segment_cadence")(expression)) -}}
{%- endmacro %}

{% macro default__distinct_list(expression) -%}
    string_agg(distinct {{ expression }}, ',' order by {{ expression }})
{%- endmacro %}

{% macro spark__distinct_list(expression) -%}
    nullif(array_join(array_sort(collect_set({{ expression }})), ','), '')
{%- endmacro %}

{#- The keys of a JSON object (text), in document order, joined with commas. -#}
{% macro json_object_keys_list(expression) -%}
    {{- return(adapter.dispatch("json_object_keys_list", "segment_cadence")(expression)) -}}
{%- endmacro %}

{% macro default__json_object_keys_list(expression) -%}
    array_to_string(json_keys({{ expression }}), ',')
{%- endmacro %}

{% macro spark__json_object_keys_list(expression) -%}
    array_join(json_object_keys({{ expression }}), ',')
{%- endmacro %}

{#- One row per item of a comma-separated text (in a select list). -#}
{% macro unnest_comma_list(expression) -%}
    {{- return(adapter.dispatch("unnest_comma_list", "segment_cadence")(expression)) -}}
{%- endmacro %}

{% macro default__unnest_comma_list(expression) -%}
    unnest(string_split({{ expression }}, ','))
{%- endmacro %}

{% macro spark__unnest_comma_list(expression) -%}
    explode(split({{ expression }}, ','))
{%- endmacro %}

{#- A date as YYYY-MM-DD text. -#}
{% macro iso_date_text(expression) -%}
    {{- return(adapter.dispatch("iso_date_text", "segment_cadence")(expression)) -}}
{%- endmacro %}

{% macro default__iso_date_text(expression) -%}
    strftime({{ expression }}, '%Y-%m-%d')
{%- endmacro %}

{% macro spark__iso_date_text(expression) -%}
    date_format({{ expression }}, 'yyyy-MM-dd')
{%- endmacro %}

{#- The wall clock as a local timestamp. -#}
{% macro local_now() -%}
    {{- return(adapter.dispatch("local_now", "segment_cadence")()) -}}
{%- endmacro %}

{% macro default__local_now() -%}
    current_localtimestamp()
{%- endmacro %}

{% macro spark__local_now() -%}
    localtimestamp()
{%- endmacro %}

{#- Aggregates of floating-point values in a fixed order, so that a re-run adds in the same
    order and gives the same last digit. Spark has no ordered aggregates: its sums follow
    the plan, which differs from DuckDB's in the last bits only. `aggregate` is avg, sum or
    stddev_pop. -#}
{% macro ordered_aggregate(aggregate, expression, order_by) -%}
    {{- return(adapter.dispatch("ordered_aggregate", "segment_cadence")(aggregate, expression, order_by)) -}}
{%- endmacro %}

{% macro default__ordered_aggregate(aggregate, expression, order_by) -%}
    {{ aggregate }}({{ expression }} order by {{ order_by }})
{%- endmacro %}

{% macro spark__ordered_aggregate(aggregate, expression, order_by) -%}
    {{ aggregate }}({{ expression }})
{%- endmacro %}

{#- Whether a double is neither infinite nor NaN. -#}
{% macro is_finite(expression) -%}
    {{- return(adapter.dispatch("is_finite", "segment_cadence")(expression)) -}}
{%- endmacro %}

{% macro default__is_finite(expression) -%}
    isfinite({{ expression }})
{%- endmacro %}

{% macro spark__is_finite(expression) -%}
    (not isnan({{ expression }}) and abs({{ expression }}) <> cast('inf' as double))
{%- endmacro %}

{#- Arrays (lists): continuous quantiles of a group, sorted and distinct; the number of
    elements; the first one; and how many of the inner ones (all but the first and the last)
    are at or below a value. -#}
{% macro distinct_quantiles(expression, fractions) -%}
    {{- return(adapter.dispatch("distinct_quantiles", "segment_cadence")(expression, fractions)) -}}
{%- endmacro %}

{% macro default__distinct_quantiles(expression, fractions) -%}
    list_sort(list_distinct(quantile_cont({{ expression }}, [
        {%- for fraction in fractions %}{{ fraction }}{{ ", " if not loop.last }}{% endfor -%}
    ])))
{%- endmacro %}

{% macro spark__distinct_quantiles(expression, fractions) -%}
    array_sort(array_distinct(percentile({{ expression }}, array(
        {%- for fraction in fractions %}cast({{ fraction }} as double){{ ", " if not loop.last }}{% endfor -%}
    ))))
{%- endmacro %}

{% macro array_length(expression) -%}
    {{- return(adapter.dispatch("array_length", "segment_cadence")(expression)) -}}
{%- endmacro %}

{% macro default__array_length(expression) -%}
    len({{ expression }})
{%- endmacro %}

{% macro spark__array_length(expression) -%}
    size({{ expression }})
{%- endmacro %}

{% macro array_first(expression) -%}
    {{- return(adapter.dispatch("array_first", "segment_cadence")(expression)) -}}
{%- endmacro %}

{% macro default__array_first(expression) -%}
    {{ expression }}[1]
{%- endmacro %}

{% macro spark__array_first(expression) -%}
    element_at({{ expression }}, 1)
{%- endmacro %}

{% macro inner_elements_at_or_below(array, value) -%}
    {{- return(adapter.dispatch("inner_elements_at_or_below", "segment_cadence")(array, value)) -}}
{%- endmacro %}

{% macro default__inner_elements_at_or_below(array, value) -%}
    len(list_filter(
        list_slice({{ array }}, 2, len({{ array }}) - 1),
        lambda edge: edge <= {{ value }}
    ))
{%- endmacro %}

{% macro spark__inner_elements_at_or_below(array, value) -%}
    size(filter(
        slice({{ array }}, 2, greatest(size({{ array }}) - 2, 0)),
        edge -> edge <= {{ value }}
    ))
{%- endmacro %}

{#- Rows of (metric, value) for each row of the preceding from clause: `pairs` is a list of
    [metric name, SQL expression]; goes after the joins. Values are DOUBLE. -#}
{% macro metric_rows(pairs) -%}
    {{- return(adapter.dispatch("metric_rows", "segment_cadence")(pairs)) -}}
{%- endmacro %}

{% macro default__metric_rows(pairs) -%}
    cross join lateral (
        values
        {%- for metric, expression in pairs %}
            ('{{ metric }}', {{ expression }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as metrics (metric, value)
{%- endmacro %}

{% macro spark__metric_rows(pairs) -%}
    lateral view stack({{ pairs | length }},
        {%- for metric, expression in pairs %}
        '{{ metric }}', {{ as_double(expression) }}{{ "," if not loop.last }}
        {%- endfor %}
    ) metrics as metric, value
{%- endmacro %}

{#- How the analysis tables are kept per month (every model of models/governance and
    models/health but the append-only audit trail and the view). DuckDB: delete+insert on
    month_end, the pre-hook deleting the month first. Spark: a Parquet table partitioned by
    month_end, written with insert_overwrite (only the partitions in the new rows are
    replaced), the pre-hook dropping the month's partition first so that a month that now
    has no rows is emptied too. The model contracts (types spelled the DuckDB way) are
    enforced on DuckDB; Spark builds the same casts. -#}
{% macro month_table_config() -%}
    {{- return(adapter.dispatch("month_table_config", "segment_cadence")()) -}}
{%- endmacro %}

{% macro default__month_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "delete+insert",
                "unique_key": "month_end", "full_refresh": false,
                "on_schema_change": "append_new_columns", "pre_hook": "{{ replace_month() }}"}) -}}
{%- endmacro %}

{% macro spark__month_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "insert_overwrite",
                "partition_by": ["month_end"], "file_format": "parquet", "full_refresh": false,
                "on_schema_change": "append_new_columns", "pre_hook": "{{ replace_month() }}",
                "contract": {"enforced": false}}) -}}
{%- endmacro %}

{#- The same for the append-only audit trail: appended on both engines. -#}
{% macro append_table_config() -%}
    {{- return(adapter.dispatch("append_table_config", "segment_cadence")()) -}}
{%- endmacro %}

{% macro default__append_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "append",
                "full_refresh": false, "on_schema_change": "append_new_columns"}) -}}
{%- endmacro %}

{% macro spark__append_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "append",
                "file_format": "parquet", "full_refresh": false,
                "on_schema_change": "append_new_columns", "contract": {"enforced": false}}) -}}
{%- endmacro %}

{#- A fractional literal that makes arithmetic floating point: `x * 1.0 / n`. DuckDB divides
    in DOUBLE anyway and keeps the literal as written; Spark would keep a DECIMAL literal in
    DECIMAL and round the quotient (see as_double), so there it is a DOUBLE literal. -#}
{% macro float_literal(text) -%}
    {{- return(adapter.dispatch("float_literal", "segment_cadence")(text)) -}}
{%- endmacro %}

{% macro default__float_literal(text) -%}
    {{ text }}
{%- endmacro %}

{% macro spark__float_literal(text) -%}
    {{ text }}D
{%- endmacro %}

{#- The day `days` days after the warehouse's today, as a date. -#}
{% macro days_after_today(days) -%}
    {{- return(adapter.dispatch("days_after_today", "segment_cadence")(days)) -}}
{%- endmacro %}

{% macro default__days_after_today(days) -%}
    (current_date + {{ days }})
{%- endmacro %}

{% macro spark__days_after_today(days) -%}
    date_add(current_date(), {{ days }})
{%- endmacro %}

{#- A whole-row checksum that a sum over rows keeps order-free (raw._month_fingerprints),
    as text. -#}
{% macro rows_checksum(columns) -%}
    {{- return(adapter.dispatch("rows_checksum", "segment_cadence")(columns)) -}}
{%- endmacro %}

{% macro default__rows_checksum(columns) -%}
    cast(sum(hash({{ columns | join(", ") }})) as varchar)
{%- endmacro %}

{% macro spark__rows_checksum(columns) -%}
    cast(sum(cast(hash({{ columns | join(", ") }}) as bigint)) as string)
{%- endmacro %}

{#- A row as a JSON object of text, {column: value} in the given order. -#}
{% macro json_record(alias, columns) -%}
    {{- return(adapter.dispatch("json_record", "segment_cadence")(alias, columns)) -}}
{%- endmacro %}

{% macro default__json_record(alias, columns) -%}
    cast(to_json({ {%- for column in columns -%}
        '{{ column | replace("'", "''") }}': {{ alias }}.{{ quoted_column(column) }}{{ ", " if not loop.last }}
    {%- endfor -%} }) as varchar)
{%- endmacro %}

{% macro spark__json_record(alias, columns) -%}
    to_json(named_struct( {%- for column in columns -%}
        '{{ column | replace("'", "\\'") }}', {{ alias }}.{{ quoted_column(column) }}{{ ", " if not loop.last }}
    {%- endfor -%} ))
{%- endmacro %}

{#- A Parquet file (or folder of files) as a relation. -#}
{% macro parquet_relation(path) -%}
    {{- return(adapter.dispatch("parquet_relation", "segment_cadence")(path)) -}}
{%- endmacro %}

{% macro default__parquet_relation(path) -%}
    read_parquet({{ text_literal(path) }})
{%- endmacro %}

{% macro spark__parquet_relation(path) -%}
    parquet.`{{ path }}`
{%- endmacro %}
