# ---------------------------------------------------------------------------------------------
# Differential expression: one job per cohort and comparison (config: cohorts.<id>.comparisons, de).
# RNA-seq counts -> PyDESeq2; log-scale arrays -> limma-style moderated t (inmoose).
# ---------------------------------------------------------------------------------------------


rule de:
    input:
        cohort=f"{RESULTS}/{{cohort}}/cohort.h5ad",
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
    priority: PRIORITY["de"]
    conda:
        "../../envs/ferrostem.yaml"
    # more threads than 1 pay only when nothing else can run beside DE: its gene blocks are 84% of its compute at
    # TCGA size, so 2 threads keep 2 cores for ~60% of 1 thread's time while the other jobs wait (the demo config
    # and bench_tcga_size.py use 1 on 2 cores; docs/performance.md, "Scheduling")
    threads: config["de"]["threads"]
    resources:
        mem_mb=cohort_job_mem("de"),
        runtime=60,
    params:
        comparison=lambda wc: comparison_config(wc.cohort, wc.comparison),
        settings=config["de"],
        simulated=lambda wc: cohort_config(wc.cohort).get("simulated", False),
    script:
        "../scripts/de.py"
