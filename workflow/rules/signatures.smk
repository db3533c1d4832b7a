# ---------------------------------------------------------------------------------------------
# Signatures: per-sample ferroptosis, stemness and immune scores from the signature catalogue
# (resources/signatures/*.yaml), a coverage table, and the signatures + immune report sections.
# Resource-backed signatures (mRNAsi weights, Charoentong, FerrDb, MSigDB c2) are scored only when
# their resource id is listed in signatures.resources (fetched by `make prefetch` or a mirror).
# ---------------------------------------------------------------------------------------------

import os

SIGNATURE_CATALOGUE = Path(workflow.basedir) / "resources" / "signatures"



rule signature_scores:
    input:
        cohort=f"{RESULTS}/{{cohort}}/cohort.h5ad",
        catalogue=sorted(str(p) for p in SIGNATURE_CATALOGUE.glob("*.yaml")),
        aliases=str(SIGNATURE_CATALOGUE / "symbol_aliases.tsv"),
        resources=list(signature_resource_files().values()),
    output:
        scores=report(
            f"{RESULTS}/{{cohort}}/scores/scores.tsv",
            caption="../report/signature_scores.rst",
            category="Signature scores",
            labels={"cohort": "{cohort}", "table": "scores"},
        ),
        info=f"{RESULTS}/{{cohort}}/scores/score_info.tsv",
        coverage=report(
            f"{RESULTS}/{{cohort}}/scores/coverage.tsv",
            caption="../report/signature_coverage.rst",
            category="Signature scores",
            labels={"cohort": "{cohort}", "table": "coverage"},
        ),
        annotated=f"{RESULTS}/{{cohort}}/scores/scores_annotated.tsv",
        section=f"{RESULTS}/{{cohort}}/sections/signatures.json",
        immune_section=f"{RESULTS}/{{cohort}}/sections/immune.json",
    params:
        settings=config["signatures"],
        catalogue_dir=lambda wildcards, input: os.path.dirname(input.aliases),
        resource_files=signature_resource_files(),
    conda:
        "../../envs/ferrostem.yaml"
    log:
        f"{RESULTS}/logs/signatures/{{cohort}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/signature_scores/{{cohort}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/signatures.py"
