# ---------------------------------------------------------------------------------------------
# Harmonise: raw files of one cohort -> one AnnData (.h5ad) with counts / tpm / log2 layers,
# gene annotation, sample sheet, clinical data and survival endpoints.
# ---------------------------------------------------------------------------------------------


rule harmonise:
    input:
        unpack(raw_inputs),
    output:
        f"{RESULTS}/{{cohort}}/cohort.h5ad",
    log:
        f"{RESULTS}/logs/harmonise/{{cohort}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/harmonise/{{cohort}}.tsv"
    priority: PRIORITY["harmonise"]
    conda:
        "../../envs/ferrostem.yaml"
    threads: head_threads
    resources:
        mem_mb=harmonise_mem,
        runtime=30,
    params:
        raw_dir=lambda wc: raw_dir(wc.cohort),
        cdr=lambda wc: CDR_PATH if uses_cdr(cohort_config(wc.cohort)) else "",
        cohort=lambda wc: cohort_config(wc.cohort),
    script:
        "../scripts/harmonise.py"


# What the config asks of the cohort (comparison columns, levels and designs, genes of interest), checked on
# the harmonised cohort in seconds. The long jobs wait for it (an `ancient` input: a rerun of this check after
# a config edit does not rerun them).
rule check_cohort:
    input:
        cohort=f"{RESULTS}/{{cohort}}/cohort.h5ad",
    output:
        f"{RESULTS}/{{cohort}}/config_check.json",
    log:
        f"{RESULTS}/logs/check_cohort/{{cohort}}.log",
    priority: PRIORITY["check_cohort"]
    # seconds (reads obs, var and layer names only): on the submitting node, not a cluster job
    localrule: True
    conda:
        "../../envs/ferrostem.yaml"
    resources:
        mem_mb=cohort_job_mem("check_cohort"),
    params:
        checks=lambda wc: cohort_checks(wc.cohort),
    script:
        "../scripts/check_cohort.py"
