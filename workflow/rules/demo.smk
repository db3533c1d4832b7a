# ---------------------------------------------------------------------------------------------
# The embedded demo: simulated cohorts written offline as a MIRROR of the GDC API and GEO (the download
# rules then fetch them through the real clients, `mirror: results/demo_data/mirror`), with the planted truth.
# ---------------------------------------------------------------------------------------------


rule demo_data:
    output:
        mirror=directory(f"{DEMO_DIR}/mirror"),
        truth=f"{DEMO_DIR}/truth/truth.json",
        de_truth=f"{DEMO_DIR}/truth/de_truth.tsv",
    log:
        f"{RESULTS}/logs/demo_data.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_data.tsv"
    priority: PRIORITY["demo_data"]
    conda:
        "../../envs/ferrostem.yaml"
    threads: 2  # every other job waits for this one: its STAR files are written on both cores
    resources:
        mem_mb=fixed_mem(2000),
        runtime=10,
    params:
        settings=config["demo"],
    script:
        "../scripts/demo_data.py"
