# ---------------------------------------------------------------------------------------------
# The embedded demo: simulated cohorts in GDC and GEO formats, written offline with the planted truth.
# ---------------------------------------------------------------------------------------------


rule demo_data:
    output:
        gdc_files=f"{DEMO_DIR}/gdc/files.json",
        gdc_cases=f"{DEMO_DIR}/gdc/cases.json",
        gdc_status=f"{DEMO_DIR}/gdc/status.json",
        gdc_data=directory(f"{DEMO_DIR}/gdc/data"),
        geo_matrix=f"{DEMO_DIR}/geo/GSE0000_series_matrix.txt.gz",
        geo_annot=f"{DEMO_DIR}/geo/GPL0000.annot.gz",
        truth=f"{DEMO_DIR}/truth/truth.json",
        de_truth=f"{DEMO_DIR}/truth/de_truth.tsv",
    params:
        settings=config["demo"],
    conda:
        "../../envs/ferrostem.yaml"
    log:
        f"{RESULTS}/logs/demo_data.log",
    script:
        "../scripts/demo_data.py"
