# ---------------------------------------------------------------------------------------------
# Differential expression: one job per cohort and comparison (config: cohorts.<id>.comparisons, de).
# RNA-seq counts -> PyDESeq2; log-scale arrays -> limma-style moderated t (inmoose).
# ---------------------------------------------------------------------------------------------


rule de:
    input:
        f"{RESULTS}/{{cohort}}/cohort.h5ad",
        checked=ancient(checked_cohort()),
    output:
        table=report(
            f"{RESULTS}/{{cohort}}/de/{{comparison}}/de.tsv",
            caption="../report/de.rst",
            category="Differential expression",
            labels={"cohort": "{cohort}", "comparison": "{comparison}"},
        ),
        summary=f"{RESULTS}/{{cohort}}/de/{{comparison}}/de_summary.json",
        section=f"{RESULTS}/{{cohort}}/sections/de_{{comparison}}.json",
    log:
        f"{RESULTS}/logs/de/{{cohort}}/{{comparison}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/de/{{cohort}}/{{comparison}}.tsv"
    priority: 10
    conda:
        "../../envs/ferrostem.yaml"
    # DE is the longest job of a cohort and enrichment and the report wait for it: start it first
    threads: config["de"]["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        comparison=lambda wc: comparison_config(wc.cohort, wc.comparison),
        settings=config["de"],
        simulated=lambda wc: cohort_config(wc.cohort).get("simulated", False),
    script:
        "../scripts/de.py"
