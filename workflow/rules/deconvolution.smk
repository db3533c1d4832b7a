# ---------------------------------------------------------------------------------------------
# Deconvolution: cell-type fractions (quanTIseq, CIBERSORT-compatible nu-SVR on the user's LM22) and the
# immunophenoscore per cohort, and the deconvolution report section (docs/deconvolution.md).
# ---------------------------------------------------------------------------------------------

DECONVOLUTION = config["deconvolution"]


def cibersort_matrix():
    """({"cibersort_lm22": cache path} when the user gave a copy, {}), and why CIBERSORT is left out otherwise."""
    if "cibersort" not in DECONVOLUTION["methods"]:
        return {}, None
    usable, left_out = RESOURCE_PLAN.split({"cibersort_lm22": ["cibersort_lm22"]})
    return {rid: paths[0] for rid, paths in usable.items()}, left_out.get("cibersort_lm22")


CIBERSORT_FILES, CIBERSORT_LEFT_OUT = cibersort_matrix()


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
    params:
        settings=DECONVOLUTION,
        resource_files=CIBERSORT_FILES,
        cibersort_left_out=CIBERSORT_LEFT_OUT,
        download=DOWNLOAD,
        resource_paths=config["resources"]["paths"],
    conda:
        "../../envs/ferrostem.yaml"
    log:
        f"{RESULTS}/logs/deconvolution/{{cohort}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/deconvolution/{{cohort}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/deconvolution.py"
