"""Reference values for the analysis statistics, computed by independent implementations
(SciPy, statsmodels, numerical integration) and written to test/fixtures/analysis/reference.json.

Run: python test/python/analysis_reference.py  (needs scipy and statsmodels). The JSON is
committed, so the TypeScript tests never need Python.
"""

import json
import math
import os

import numpy as np
from scipy import integrate, stats
from statsmodels.stats.proportion import test_proportions_2indep

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "analysis", "reference.json")


def normal():
    zs = [-8.5, -5, -3.2, -2.054, -1, -0.3, 0, 0.25, 1.5, 2.33, 3, 4.5, 6, 9]
    ps = [1e-12, 1e-6, 0.001, 0.01, 0.02, 0.025, 0.1, 0.3, 0.5, 0.7, 0.95, 0.98, 0.99, 0.999, 1 - 1e-9]
    return {
        "cdf": [[z, float(stats.norm.cdf(z))] for z in zs],
        "sf": [[z, float(stats.norm.sf(z))] for z in zs],
        "ppf": [[p, float(stats.norm.ppf(p))] for p in ps],
    }


def beta():
    cases = [(1, 1, 0.3), (2, 5, 0.2), (0.5, 0.5, 0.9), (31, 971, 0.03), (120.5, 80.25, 0.61), (1000, 9000, 0.1)]
    pcases = [(1, 1, 0.025), (2, 5, 0.5), (31, 971, 0.975), (120.5, 80.25, 0.025), (3, 1, 0.9)]
    return {
        "cdf": [[a, b, x, float(stats.beta.cdf(x, a, b))] for a, b, x in cases],
        "ppf": [[a, b, p, float(stats.beta.ppf(p, a, b))] for a, b, p in pcases],
    }


def binomial():
    cases = [(3, 10, 0.3), (140, 150, 0.99), (995, 1000, 0.99), (0, 50, 0.02), (60, 100, 0.5)]
    qcases = [(0.01, 150, 0.99), (0.99, 1000, 0.99), (0.01, 3000, 0.99), (0.5, 11, 0.3)]
    return {
        "cdf": [[k, n, p, float(stats.binom.cdf(k, n, p))] for k, n, p in cases],
        "ppf": [[q, n, p, int(stats.binom.ppf(q, n, p))] for q, n, p in qcases],
    }


def two_proportion():
    """statsmodels' Agresti-Caffo test of H1: p1 - p2 > value."""
    cases = [
        (3, 150, 28, 2850, 0.005),
        (12, 600, 30, 11400, 0.005),
        (0, 200, 0, 3800, 0.005),
        (40, 500, 100, 2500, 0.0),
        (5, 60, 1, 60, 0.01),
        (150, 3000, 600, 57000, 0.005),
    ]
    out = []
    for x1, n1, x2, n2, value in cases:
        r = test_proportions_2indep(x1, n1, x2, n2, value=value, method="agresti-caffo", compare="diff", alternative="larger")
        out.append({"candidate": [x1, n1], "baseline": [x2, n2], "margin": value, "z": float(r.statistic), "p": float(r.pvalue)})
    return out


def mann_whitney():
    """Binned samples: every observation in a bucket is a tie at that bucket (its index)."""
    cases = [
        ([0, 3, 10, 5, 2, 0], [1, 20, 60, 15, 4, 0]),
        ([0, 0, 4, 9, 6, 1], [2, 30, 50, 12, 5, 1]),
        ([5, 5, 5, 5], [5, 5, 5, 5]),
        ([1, 40, 100, 30, 9], [20, 400, 1700, 500, 230]),
        ([0, 1, 0, 0, 2, 7], [3, 2, 0, 1, 0, 0]),
    ]
    out = []
    for cx, cy in cases:
        x = np.repeat(np.arange(len(cx)), cx)
        y = np.repeat(np.arange(len(cy)), cy)
        r = stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic", use_continuity=True)
        out.append({"candidate": cx, "baseline": cy, "u": float(r.statistic), "p": float(r.pvalue)})
    return out


def msprt():
    """The mixture likelihood ratio by numerical integration over the N(0, tau^2) prior, against
    which the closed form in sequential.ts is checked."""
    out = []
    for est, var, tau in [(0.01, 1e-4, 0.02), (0.03, 4e-5, 0.02), (-0.002, 2.5e-5, 0.05), (0.0, 1e-3, 0.01)]:
        sd = math.sqrt(var)

        def integrand(theta):
            lr = stats.norm.pdf(est, loc=theta, scale=sd) / stats.norm.pdf(est, loc=0, scale=sd)
            return lr * stats.norm.pdf(theta, loc=0, scale=tau)

        val, _ = integrate.quad(integrand, -12 * tau, 12 * tau, points=[est], limit=500)
        out.append({"estimate": est, "variance": var, "tau": tau, "logRatio": math.log(val)})
    return out


def probability_best():
    """P(Beta(a1,b1) > Beta(a2,b2)) by quadrature, for the bandit's Monte Carlo."""
    out = []
    for a1, b1, a2, b2 in [(11, 91, 9, 93), (51, 451, 41, 461), (3, 3, 3, 3), (201, 801, 181, 821)]:
        val, _ = integrate.quad(lambda x: stats.beta.pdf(x, a1, b1) * stats.beta.cdf(x, a2, b2), 0, 1, limit=500)
        out.append({"arms": [[a1, b1], [a2, b2]], "probabilityFirstBest": float(val)})
    return out


def main():
    data = {
        "generatedBy": "test/python/analysis_reference.py",
        "versions": {"scipy": __import__("scipy").__version__, "statsmodels": __import__("statsmodels").__version__},
        "normal": normal(),
        "beta": beta(),
        "binomial": binomial(),
        "twoProportion": two_proportion(),
        "mannWhitney": mann_whitney(),
        "msprt": msprt(),
        "probabilityBest": probability_best(),
    }
    with open(OUT, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
