# ---------------------------------------------------------------------------------------------
# Ferroptosis subtypes: consensus clustering of each cohort's tumours on the ferroptosis regulators
# (Monti et al. 2003, as R ConsensusClusterPlus), then survival, microenvironment, checkpoint,
# stemness and DE differences between the subtypes, and the report section (docs/subtypes.md).
# ---------------------------------------------------------------------------------------------

SUBTYPES = config["subtypes"]


if SUBTYPES["enabled"] and config["signatures"]["enabled"]:
    from ferrostem.risk_models import resolve_universe

    SUBTYPE_REGULATORS = resolve_universe(SUBTYPES["regulators"], SIGNATURE_CATALOGUE, key="subtypes.regulators")

    rule subtypes:
        input:
            cohort=f"{RESULTS}/{{cohort}}/cohort.h5ad",
            checked=ancient(checked_cohort()),
            scores=f"{RESULTS}/{{cohort}}/scores/scores.tsv",
            info=f"{RESULTS}/{{cohort}}/scores/score_info.tsv",
        output:
            assignments=report(
                f"{RESULTS}/{{cohort}}/subtypes/subtypes.tsv",
                caption="../report/subtypes.rst",
                category="Ferroptosis subtypes",
                labels={"cohort": "{cohort}", "table": "subtype per tumour"},
            ),
            k_stats=f"{RESULTS}/{{cohort}}/subtypes/consensus_k.tsv",
            differences=f"{RESULTS}/{{cohort}}/subtypes/differences.tsv",
            survival=f"{RESULTS}/{{cohort}}/subtypes/survival.tsv",
            markers=f"{RESULTS}/{{cohort}}/subtypes/marker_regulators.tsv",
            de=directory(f"{RESULTS}/{{cohort}}/subtypes/de"),
            section=f"{RESULTS}/{{cohort}}/sections/subtypes.json",
        log:
            f"{RESULTS}/logs/subtypes/{{cohort}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/subtypes/{{cohort}}.tsv"
        priority: PRIORITY["subtypes"]
        conda:
            "../../envs/ferrostem.yaml"
        threads: 1
        resources:
            mem_mb=cohort_job_mem("subtypes"),
            runtime=60,
        params:
            subtypes=SUBTYPES,
            regulators=SUBTYPE_REGULATORS,
            checkpoint_genes=config["survival"]["checkpoint_genes"],
            endpoints=config["survival"]["endpoints"],
            de=config["de"],
            catalogue=str(SIGNATURE_CATALOGUE),
            enrichment_permutations=config["enrichment"]["permutations"],
            enrichment_min_size=config["enrichment"]["min_size"],
            label=lambda wc: cohort_config(wc.cohort).get("label", wc.cohort),
        script:
            "../scripts/subtypes.py"
