{#- The quarter's k-means clusters, one row per buyer: the labels are Python's (the quarterly
    re-fit, segment_cadence/defs/strategic/strategic.py), written as a Parquet file beside the
    candidate (var/candidates/<quarter>/cluster_assignments.parquet) and named here by the var
    cluster_assignments_file. Kept per quarter, so the next quarter's stability (adjusted Rand
    index against this one) can be measured. No file named: no rows. -#}
{{ config(**keyed_table_config("quarter")) }}

{%- set file = cadence_var("cluster_assignments_file") %}

select
    {{ text_literal(cadence_var("quarter")) }} as quarter,
    {{ dbt.cast("clusters.customer_id", string_type()) }} as customer_id,
    cast(clusters.cluster as integer) as cluster

from
    {%- if file %} {{ parquet_relation(file) }}
    {%- else %} ({{ vars_rows([], {"customer_id": "varchar", "cluster": "integer"}) }})
    {%- endif %} as clusters
