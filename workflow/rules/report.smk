# ---------------------------------------------------------------------------------------------
# Report: each stage writes a section (template + data, JSON); `report` renders them into one
# self-contained HTML file per cohort.
# ---------------------------------------------------------------------------------------------


rule cohort_report:
    input:
        cohort=f"{RESULTS}/{{cohort}}/cohort.h5ad",
    output:
        summary=f"{RESULTS}/{{cohort}}/sections/cohort.json",
        provenance=f"{RESULTS}/{{cohort}}/sections/provenance.json",
    log:
        f"{RESULTS}/logs/cohort_report/{{cohort}}.log",
    priority: PRIORITY["cohort_report"]
    # on the submitting node under a cluster executor: a few seconds, not worth a queue wait
    localrule: True
    conda:
        "../../envs/ferrostem.yaml"
    resources:
        mem_mb=cohort_job_mem("cohort_report"),
    params:
        cohort=lambda wc: cohort_config(wc.cohort),
        config=config,
    script:
        "../scripts/cohort_report.py"


rule report:
    input:
        report_sections,
    output:
        report(
            f"{RESULTS}/{{cohort}}/report.html",
            caption="../report/cohort_report.rst",
            category="Cohort reports",
            labels={"cohort": "{cohort}"},
        ),
    log:
        f"{RESULTS}/logs/report/{{cohort}}.log",
    priority: PRIORITY["report"]
    # on the submitting node under a cluster executor: a few seconds, not worth a queue wait
    localrule: True
    conda:
        "../../envs/ferrostem.yaml"
    params:
        cohort=lambda wc: cohort_config(wc.cohort),
    script:
        "../scripts/report.py"
