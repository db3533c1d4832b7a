# ---------------------------------------------------------------------------------------------
# Survival: Cox / Kaplan-Meier / cutpoint / C / AUC per score and endpoint; LASSO-Cox risk model
# trained on a discovery cohort and applied unchanged elsewhere; genes of interest; diagnostic
# panels; and, with several cohorts, a cross-cohort random-effects meta-analysis page.
# ---------------------------------------------------------------------------------------------

if LASSO.enabled:

    rule lasso_cox:
        input:
            cohort=f"{RESULTS}/{LASSO.discovery}/cohort.h5ad",
        output:
            model=f"{lasso_model_stem()}.yaml",
            cv=f"{lasso_model_stem()}_cv.tsv",
        log:
            f"{RESULTS}/logs/lasso_cox.log",
        benchmark:
            f"{RESULTS}/benchmarks/lasso_cox.tsv"
        priority: PRIORITY["lasso_cox"]
        conda:
            "../../envs/ferrostem.yaml"
        threads: 1
        resources:
            mem_mb=cohort_job_mem("lasso_cox"),
            runtime=30,
        params:
            survival=SURVIVAL,
            catalogue=str(SIGNATURE_CATALOGUE),
        script:
            "../scripts/lasso_cox.py"


rule survival:
    input:
        unpack(lasso_model_paths),
        cohort=f"{RESULTS}/{{cohort}}/cohort.h5ad",
        scores=f"{RESULTS}/{{cohort}}/scores/scores.tsv",
        info=f"{RESULTS}/{{cohort}}/scores/score_info.tsv",
    output:
        table=report(
            f"{RESULTS}/{{cohort}}/survival/survival.tsv",
            caption="../report/survival.rst",
            category="Survival",
            labels={"cohort": "{cohort}", "table": "score x endpoint"},
        ),
        terms=f"{RESULTS}/{{cohort}}/survival/multivariable_terms.tsv",
        scores=f"{RESULTS}/{{cohort}}/survival/scores_analysed.tsv",
        section=f"{RESULTS}/{{cohort}}/sections/survival.json",
        immune_section=f"{RESULTS}/{{cohort}}/sections/immune_survival.json",
    log:
        f"{RESULTS}/logs/survival/{{cohort}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/survival/{{cohort}}.tsv"
    priority: PRIORITY["survival"]
    conda:
        "../../envs/ferrostem.yaml"
    threads: 1
    resources:
        mem_mb=cohort_job_mem("survival"),
        runtime=30,
    params:
        survival=SURVIVAL,
        label=lambda wc: cohort_config(wc.cohort).get("label", wc.cohort),
    script:
        "../scripts/survival.py"


rule genes_of_interest:
    input:
        cohort=f"{RESULTS}/{{cohort}}/cohort.h5ad",
        scores=f"{RESULTS}/{{cohort}}/scores/scores.tsv",
        info=f"{RESULTS}/{{cohort}}/scores/score_info.tsv",
        survival=f"{RESULTS}/{{cohort}}/survival/survival.tsv",
    output:
        section=f"{RESULTS}/{{cohort}}/sections/genes.json",
    log:
        f"{RESULTS}/logs/genes_of_interest/{{cohort}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/genes_of_interest/{{cohort}}.tsv"
    priority: PRIORITY["genes_of_interest"]
    conda:
        "../../envs/ferrostem.yaml"
    threads: 1
    resources:
        mem_mb=cohort_job_mem("genes_of_interest"),
        runtime=30,
    params:
        survival=SURVIVAL,
        label=lambda wc: cohort_config(wc.cohort).get("label", wc.cohort),
    script:
        "../scripts/genes_of_interest.py"


rule survival_cross_cohort:
    input:
        tables=expand(f"{RESULTS}/{{cohort}}/survival/survival.tsv", cohort=list(COHORTS)),
    output:
        table=f"{RESULTS}/cross_cohort/survival_meta.tsv",
        section=f"{RESULTS}/cross_cohort/sections/cross_cohort.json",
        html=report(
            f"{RESULTS}/cross_cohort/report.html",
            caption="../report/cross_cohort.rst",
            category="Cohort reports",
        ),
    log:
        f"{RESULTS}/logs/survival_cross_cohort.log",
    priority: PRIORITY["survival_cross_cohort"]
    # on the submitting node under a cluster executor: a few seconds, not worth a queue wait
    localrule: True
    conda:
        "../../envs/ferrostem.yaml"
    params:
        cohorts=list(COHORTS),
        simulated=any(c.get("simulated", False) for c in COHORTS.values()),
    script:
        "../scripts/survival_cross_cohort.py"
