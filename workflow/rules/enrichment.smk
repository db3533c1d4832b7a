# ---------------------------------------------------------------------------------------------
# Enrichment of each DE result: GSEA prerank (gseapy, offline) and hypergeometric ORA against the
# configured collections (repository GMTs, locked resources, the signature catalogue).
# ---------------------------------------------------------------------------------------------


rule enrichment:
    input:
        table=f"{RESULTS}/{{cohort}}/de/{{comparison}}/de.tsv",
        genesets=enrichment_inputs,
    output:
        gsea=report(
            f"{RESULTS}/{{cohort}}/enrichment/{{comparison}}/gsea.tsv",
            caption="../report/enrichment.rst",
            category="Enrichment",
            labels={"cohort": "{cohort}", "comparison": "{comparison}", "table": "GSEA"},
        ),
        ora=f"{RESULTS}/{{cohort}}/enrichment/{{comparison}}/ora.tsv",
        sizes=f"{RESULTS}/{{cohort}}/enrichment/{{comparison}}/gene_sets.tsv",
        collections=f"{RESULTS}/{{cohort}}/enrichment/{{comparison}}/collections.tsv",
        section=f"{RESULTS}/{{cohort}}/sections/enrichment_{{comparison}}.json",
    log:
        f"{RESULTS}/logs/enrichment/{{cohort}}/{{comparison}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/enrichment/{{cohort}}/{{comparison}}.tsv"
    priority: PRIORITY["enrichment"]
    conda:
        "../../envs/ferrostem.yaml"
    threads: 1
    resources:
        mem_mb=enrichment_mem,
        runtime=60,
    params:
        settings=config["enrichment"],
        alpha=config["de"]["alpha"],  # the DE calls ORA tests (filled by the schema default)
        collections=enrichment_collections(),
        resource_files=enrichment_resource_files(),
        resources_left_out=enrichment_resources()[1],
        download=DOWNLOAD,
        resource_paths=config["resources"]["paths"],
        test=lambda wc: comparison_config(wc.cohort, wc.comparison)["test"],
    script:
        "../scripts/enrichment.py"
