"""Benchmark (not a test): 300 scores x 3 endpoints on 424 tumours, the full per-endpoint analysis.

Univariate and multivariable Cox, median/tertile log-rank, optimal cutpoint (Lausen-Schumacher), Harrell's C,
AUC at 1/3/5 years and the Schoenfeld check of the 30 strongest scores, as the workflow runs them.
Run:  .venv/bin/python benchmarks/bench_survival.py   (target: <= 60 s on 2 cores)
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from ferrostem.survival import SurvivalSettings, analyse_endpoint


def simulate(n: int = 424, k: int = 300, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    factor = rng.standard_normal(n)
    loadings = rng.uniform(-0.8, 0.8, k)
    scores = pd.DataFrame(
        np.outer(factor, loadings) + rng.standard_normal((n, k)),
        index=[f"S{i:04d}" for i in range(n)],
        columns=[f"score_{j:03d}" for j in range(k)],
    )
    stage = rng.choice([1, 2, 3, 4], n, p=[0.4, 0.3, 0.2, 0.1])
    obs = pd.DataFrame(
        {
            "age": rng.normal(62, 10, n).round(),
            "stage": [f"Stage {'I' * s if s < 4 else 'IV'}" for s in stage],
            "sex": rng.choice(["male", "female"], n),
        },
        index=scores.index,
    )
    for endpoint, scale in [("OS", 2000), ("DSS", 2600), ("PFI", 1100)]:
        hazard = np.exp(0.5 * factor + 0.3 * (stage - 1))
        event_time = rng.weibull(1.2, n) * scale / hazard ** (1 / 1.2)
        censor = rng.uniform(100, 4000, n)
        obs[endpoint] = (event_time <= censor).astype(float)
        obs[f"{endpoint}.time"] = np.ceil(np.minimum(event_time, censor))
    return obs, scores


def main() -> None:
    obs, scores = simulate()
    settings = SurvivalSettings.from_config()  # the schema's defaults, as the workflow runs them
    start = time.perf_counter()
    for endpoint in ["OS", "DSS", "PFI"]:
        tick = time.perf_counter()
        result = analyse_endpoint(obs, scores, endpoint, settings)
        print(
            f"{endpoint}: {len(result.table)} scores, {int(result.frame['event'].sum())} events, "
            f"{time.perf_counter() - tick:.1f} s"
        )
    total = time.perf_counter() - start
    print(f"300 scores x 3 endpoints x {len(obs)} samples: {total:.1f} s on {os.cpu_count()} cores (target 60 s)")


if __name__ == "__main__":
    main()
