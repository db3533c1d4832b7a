"""The sources' base URLs and dataset names: what the Snakefile's parse needs (download.settings, the TCGA-CDR
path), without the source modules' parsers and their imports (polars, pandas; docs/performance.md)."""

GDC_API = "https://api.gdc.cancer.gov"
GDC_HUB = "https://gdc-hub.s3.us-east-1.amazonaws.com"  # UCSC Xena's GDC hub
PANCAN_HUB = "https://tcga-pancan-atlas-hub.s3.us-east-1.amazonaws.com"  # UCSC Xena's PanCanAtlas hub
CDR_DATASET = "Survival_SupplementalTable_S1_20171025_xena_sp"  # the TCGA-CDR on the PanCanAtlas hub
GEO_FTP = "https://ftp.ncbi.nlm.nih.gov/geo"
GEO_QUERY = "https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi"
NCBI_GEO_DOWNLOAD = "https://www.ncbi.nlm.nih.gov/geo/download/"
