# ---------------------------------------------------------------------------------------------
# Download: each cohort's raw files (GDC API, UCSC Xena, GEO), the TCGA-CDR survival table and the
# locked external resources. All through one verified, resumable client (src/ferrostem/sources/http.py),
# from the source or from `mirror:`. The signature and enrichment rules take the cached resources as inputs
# (unless resources.fetch is false), so fetch_resource runs before them. Cacheable between workflows:
# `snakemake --cache` (with SNAKEMAKE_OUTPUT_CACHE set) shares them; `snakemake prefetch` fetches everything
# a config needs, for nodes without network.
# ---------------------------------------------------------------------------------------------


rule download_cohort:
    input:
        mirror_inputs,
    output:
        directory(f"{RESULTS}/raw/{{cohort}}"),
    log:
        f"{RESULTS}/logs/download/{{cohort}}.log",
    cache: "omit-software"
    priority: PRIORITY["download_cohort"]
    retries: 1
    # on the submitting node under a cluster executor: compute nodes often have no internet
    localrule: True
    conda:
        "../../envs/ferrostem.yaml"
    threads: head_threads
    params:
        cohort=lambda wc: cohort_config(wc.cohort),
        download=DOWNLOAD,
    script:
        "../scripts/download_cohort.py"


rule download_cdr:
    input:
        mirror_inputs,
    output:
        CDR_PATH,
    log:
        f"{RESULTS}/logs/download/tcga_cdr.log",
    cache: "omit-software"
    priority: PRIORITY["download_cdr"]
    # on the submitting node under a cluster executor: compute nodes often have no internet
    localrule: True
    conda:
        "../../envs/ferrostem.yaml"
    params:
        download=DOWNLOAD,
    script:
        "../scripts/download_cdr.py"


rule fetch_resource:
    input:
        mirror_inputs,
    output:
        "resources/cache/{resource}/{filename}",
    log:
        f"{RESULTS}/logs/resources/{{resource}}/{{filename}}.log",
    wildcard_constraints:
        resource="|".join(RESOURCE_LOCK),
        filename="[^/]+",
    cache: "omit-software"
    priority: PRIORITY["fetch_resource"]
    # on the submitting node under a cluster executor: compute nodes often have no internet
    localrule: True
    conda:
        "../../envs/ferrostem.yaml"
    params:
        user_copy=lambda wc: config["resources"]["paths"].get(wc.resource, ""),
        download=DOWNLOAD,
    script:
        "../scripts/fetch_resource.py"


rule prefetch:
    input:
        prefetch_targets,
    localrule: True
