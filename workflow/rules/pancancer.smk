# ---------------------------------------------------------------------------------------------
# Pan-cancer page (config: pancancer.enabled): the ferroptosis core regulators' tumour-vs-normal log2FC, the
# HR per SD of every ferroptosis, stemness and immune score, the stemness index's correlation with the
# ferroptosis scores, and the random-effects meta-analysis, laid out across cancers. Built from each cohort's
# outputs (de.tsv, survival.tsv, scores): nothing is recomputed.
# ---------------------------------------------------------------------------------------------

PANCANCER = config["pancancer"]


rule pancancer:
    input:
        de=list(pancancer_de_tables().values()),
        survival=expand(f"{RESULTS}/{{cohort}}/survival/survival.tsv", cohort=list(COHORTS)),
        scores=expand(f"{RESULTS}/{{cohort}}/scores/scores_annotated.tsv", cohort=list(COHORTS)),
        info=expand(f"{RESULTS}/{{cohort}}/scores/score_info.tsv", cohort=list(COHORTS)),
    output:
        changes=f"{RESULTS}/pancancer/core_regulators_log2fc.tsv",
        hazards=f"{RESULTS}/pancancer/hazard_ratios.tsv",
        correlations=f"{RESULTS}/pancancer/stemness_correlations.tsv",
        meta=f"{RESULTS}/pancancer/meta_analysis.tsv",
        section=f"{RESULTS}/pancancer/sections/pancancer.json",
        html=report(
            f"{RESULTS}/pancancer/report.html",
            caption="../report/pancancer.rst",
            category="Cohort reports",
        ),
    log:
        f"{RESULTS}/logs/pancancer.log",
    benchmark:
        f"{RESULTS}/benchmarks/pancancer.tsv"
    priority: PRIORITY["pancancer"]
    conda:
        "../../envs/ferrostem.yaml"
    # reads every cohort's tables (tens of MB for 33 cancers) and draws a few figures: minutes, little memory
    threads: 1
    resources:
        mem_mb=fixed_mem(4000),
        runtime=30,
    params:
        cancers=list(COHORTS),
        de_tables=pancancer_de_tables(),
        settings=PANCANCER,
        alpha=config["de"]["alpha"],
        simulated=any(c.get("simulated", False) for c in COHORTS.values()),
    script:
        "../scripts/pancancer.py"
