# ---------------------------------------------------------------------------------------------
# Deconvolution: cell-type fractions (quanTIseq, CIBERSORT-compatible nu-SVR on the user's LM22) and the
# immunophenoscore per cohort, and the deconvolution report section (docs/deconvolution.md).
# ---------------------------------------------------------------------------------------------


rule deconvolution:
    input:
        cohort=f"{RESULTS}/{{cohort}}/cohort.h5ad",
        checked=ancient(checked_cohort()),
        resources=list(CIBERSORT_FILES.values()),
    output:
        fractions=report(
            f"{RESULTS}/{{cohort}}/deconvolution/fractions.tsv",
            caption="../report/deconvolution_fractions.rst",
            category="Deconvolution",
            labels={"cohort": "{cohort}", "table": "fractions"},
        ),
        coverage=f"{RESULTS}/{{cohort}}/deconvolution/coverage.tsv",
        section=f"{RESULTS}/{{cohort}}/sections/deconvolution.json",
    log:
        f"{RESULTS}/logs/deconvolution/{{cohort}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/deconvolution/{{cohort}}.tsv"
    priority: PRIORITY["deconvolution"]
    conda:
        "../../envs/ferrostem.yaml"
    threads: 1
    resources:
        mem_mb=cohort_job_mem("deconvolution"),
        runtime=30,
    params:
        settings=DECONVOLUTION,
        resource_files=CIBERSORT_FILES,
        cibersort_left_out=CIBERSORT_LEFT_OUT,
        download=DOWNLOAD,
        resource_paths=config["resources"]["paths"],
    script:
        "../scripts/deconvolution.py"
