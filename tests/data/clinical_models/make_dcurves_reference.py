"""Reference decision curves from the `dcurves` package (1.1.7, PyPI) for tests/test_clinical_models.py.

Run in a separate virtual environment (dcurves is not a ferrostem dependency), from this folder:
    python -m venv /tmp/dca && /tmp/dca/bin/pip install dcurves==1.1.7 && /tmp/dca/bin/python make_dcurves_reference.py
Input: dcurves_input.tsv (time, event and the 3-year risk 1 - S(3 | x) of the Cox model of data.tsv, as
ferrostem.clinical_models predicts it; the test checks that these risks are still what the code predicts).
Output: dcurves_reference.tsv (net benefit per model and threshold at 3 years).
"""

import dcurves
import numpy as np
import pandas as pd

data = pd.read_csv("dcurves_input.tsv", sep="\t")
thresholds = [round(t, 2) for t in np.arange(0.01, 1.0, 0.01)]
curves = dcurves.dca(
    data=data, outcome="event", modelnames=["risk"], thresholds=thresholds, time=3.0, time_to_outcome_col="time"
)
curves[["model", "threshold", "net_benefit"]].to_csv("dcurves_reference.tsv", sep="\t", index=False)
