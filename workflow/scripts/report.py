from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

from ferrostem.files import atomic_write
from ferrostem.report import read_section, render_report
from ferrostem.runtime import imports_done

imports_done()

cohort = snakemake.params.cohort
label = cohort.get("label", snakemake.wildcards.cohort)
html = render_report(
    [read_section(p) for p in snakemake.input],
    cohort=snakemake.wildcards.cohort,
    title=f"ferrostem report: {label}",
    simulated=cohort.get("simulated", False),
)
with atomic_write(snakemake.output[0], "w", encoding="utf-8") as handle:
    handle.write(html)
log.info("report written to %s (%.1f MB)", snakemake.output[0], len(html) / 1e6)
