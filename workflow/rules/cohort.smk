# ---------------------------------------------------------------------------------------------
# Harmonise: raw files of one cohort -> one AnnData (.h5ad) with counts / tpm / log2 layers,
# gene annotation, sample sheet, clinical data and survival endpoints.
# ---------------------------------------------------------------------------------------------


rule harmonise:
    input:
        unpack(raw_inputs),
    output:
        f"{RESULTS}/{{cohort}}/cohort.h5ad",
    params:
        raw_dir=lambda wc: raw_dir(wc.cohort),
        cdr=lambda wc: CDR_PATH if uses_cdr(cohort_config(wc.cohort)) else "",
        cohort=lambda wc: cohort_config(wc.cohort),
    conda:
        "../../envs/ferrostem.yaml"
    log:
        f"{RESULTS}/logs/harmonise/{{cohort}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/harmonise/{{cohort}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/harmonise.py"
