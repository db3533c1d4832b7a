# ---------------------------------------------------------------------------------------------
# Signatures: per-sample ferroptosis, stemness and immune scores from the signature catalogue
# (resources/signatures/*.yaml), a coverage table, and the signatures + immune report sections.
# Resource-backed signatures (mRNAsi weights, Charoentong's 28 cell types, FerrDb, MSigDB C2) read their
# locked resource, fetched first by rule fetch_resource; an offline run (resources.fetch: false) leaves them
# out and the report says how to include them.
# ---------------------------------------------------------------------------------------------

import os

# {id: cache path} of the resources the selected catalogue entries use, {id: why left out} of the others
SIGNATURE_RESOURCE_FILES, SIGNATURE_RESOURCES_LEFT_OUT = signature_resources()


rule signature_scores:
    input:
        cohort=f"{RESULTS}/{{cohort}}/cohort.h5ad",
        checked=ancient(checked_cohort()),
        catalogue=sorted(str(p) for p in SIGNATURE_CATALOGUE.glob("*.yaml")),
        aliases=str(SIGNATURE_CATALOGUE / "symbol_aliases.tsv"),
        resources=list(SIGNATURE_RESOURCE_FILES.values()),
        user_gmts=[repo_path(spec["gmt"]) for spec in config["signatures"]["user_gmts"]],
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
    log:
        f"{RESULTS}/logs/signatures/{{cohort}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/signature_scores/{{cohort}}.tsv"
    priority: PRIORITY["signature_scores"]
    conda:
        "../../envs/ferrostem.yaml"
    threads: 1
    resources:
        mem_mb=cohort_job_mem("signature_scores"),
        runtime=30,
    params:
        settings=config["signatures"],
        catalogue_dir=lambda wildcards, input: os.path.dirname(input.aliases),
        resource_files=SIGNATURE_RESOURCE_FILES,
        resources_left_out=SIGNATURE_RESOURCES_LEFT_OUT,
        download=DOWNLOAD,
        resource_paths=config["resources"]["paths"],
        user_gmts=[dict(spec, gmt=repo_path(spec["gmt"])) for spec in config["signatures"]["user_gmts"]],
    script:
        "../scripts/signatures.py"
