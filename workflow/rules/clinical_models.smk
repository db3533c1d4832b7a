# ---------------------------------------------------------------------------------------------
# Clinical models: a Cox nomogram of each risk score (catalogue risk scores; the LASSO-Cox score in its
# discovery and validation cohorts) with stage and age, bootstrap-corrected calibration and decision curves.
# ---------------------------------------------------------------------------------------------


rule clinical_models:
    input:
        unpack(lasso_model_paths),
        cohort=f"{RESULTS}/{{cohort}}/cohort.h5ad",
        scores=f"{RESULTS}/{{cohort}}/scores/scores.tsv",
        info=f"{RESULTS}/{{cohort}}/scores/score_info.tsv",
    output:
        terms=f"{RESULTS}/{{cohort}}/clinical_models/model_terms.tsv",
        points=f"{RESULTS}/{{cohort}}/clinical_models/nomogram_points.tsv",
        calibration=f"{RESULTS}/{{cohort}}/clinical_models/calibration.tsv",
        decision=f"{RESULTS}/{{cohort}}/clinical_models/decision_curve.tsv",
        section=f"{RESULTS}/{{cohort}}/sections/clinical_models.json",
    log:
        f"{RESULTS}/logs/clinical_models/{{cohort}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/clinical_models/{{cohort}}.tsv"
    priority: PRIORITY["clinical_models"]
    conda:
        "../../envs/ferrostem.yaml"
    threads: 1
    resources:
        mem_mb=cohort_job_mem("clinical_models"),
        runtime=60,
    params:
        clinical=CLINICAL_MODELS,
        label=lambda wc: cohort_config(wc.cohort).get("label", wc.cohort),
    script:
        "../scripts/clinical_models.py"
