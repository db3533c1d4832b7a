import _bootstrap  # noqa: F401 (first: logs to the rule's log, puts src/ on the path)

import pandas as pd

from ferrostem.files import atomic_write, write_tsv
from ferrostem.genesets import FERROPTOSIS_CORE_REGULATORS
from ferrostem.pancancer import core_regulator_changes, meta_across_cancers, score_hazard_ratios, stemness_correlations
from ferrostem.pancancer_report import pancancer_section
from ferrostem.report import render_report, write_section
from ferrostem.runtime import imports_done

imports_done()

cancers = list(snakemake.params.cancers)
settings = snakemake.params.settings
alpha = float(snakemake.params.alpha)
de_paths = dict(snakemake.params.de_tables)  # cancer -> de.tsv, absent for a cohort without normals
read = lambda path: pd.read_csv(path, sep="\t")  # noqa: E731
de_tables = {c: read(de_paths[c]) if c in de_paths else None for c in cancers}
survival = {c: read(p) for c, p in zip(cancers, snakemake.input.survival)}
scores = {c: read(p).set_index("sample_id") for c, p in zip(cancers, snakemake.input.scores)}
infos = {c: read(p) for c, p in zip(cancers, snakemake.input.info)}

tables = {
    "changes": core_regulator_changes(de_tables, list(FERROPTOSIS_CORE_REGULATORS), alpha=alpha),
    "hazards": score_hazard_ratios(survival),
    "correlations": stemness_correlations(scores, infos, stemness_index=settings["stemness_index"]),
}
tables["meta"] = meta_across_cancers(tables["hazards"])
for name, table in tables.items():
    write_tsv(table, snakemake.output[name])
section = pancancer_section(
    tables["changes"],
    tables["hazards"],
    tables["correlations"],
    tables["meta"],
    cancers=cancers,
    stemness_index=settings["stemness_index"],
    alpha=alpha,
)
write_section(section, snakemake.output.section)
html = render_report(
    [section],
    cohort="all cancers",
    title="ferrostem: pan-cancer ferroptosis and stemness",
    simulated=bool(snakemake.params.simulated),
)
with atomic_write(snakemake.output.html, encoding="utf-8") as handle:
    handle.write(html)
