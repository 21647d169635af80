"""Seeds added until each pair settles: an anytime-valid stopping rule over paired seed runs.

Run i of every architecture draws the same split, order and initialisation seeds, so a pair's evidence is its
paired runs. After the first `min` seeds, and after every round of seeds added, the rule looks at each pair that
has not settled yet:

- **A better / B better**: a confidence sequence for P(A beats B in a paired run) (a tie counts half) excludes
  1/2. It is Waudby-Smith and Ramdas's (2024) betting confidence sequence for a bounded mean (hedged capital,
  predictable plug-in bets, running intersection) on each pair's win (1), loss (0) or tie (1/2): it needs no model
  of the scores, which are often bimodal (a seed solves the task or stops on a plateau), and P(A > B) is Bouthillier
  et al.'s (2021), which the report gives for fixed seed counts too.
- **practically equivalent** (with `evaluation.rope`): a confidence sequence for the mean paired difference in the
  headline metric lies inside (-rope, rope). A bounded nonparametric sequence cannot certify a small difference
  in a few dozen runs (a difference of mean 0.05 can hide as a 1-in-20 chance of 1.0), so this one assumes the
  differences are roughly normal: the scale-invariant Bayes factor of the one-sample t-test (Lai 1976; Wang and
  Ramdas 2023), a test martingale under that assumption, inverted into an interval at each look.

Both are time-uniform: the chance that either ever excludes the truth, at any of however many looks, is at most
its alpha. Each pair gets (1 - confidence) / pairs (Bonferroni over the study's pairs, as the fixed-count rule),
halved between the two sequences where a rope is set, so the chance of any false decision in the study stays at
most 1 - confidence however many rounds are run. A pair that settles keeps its decision; seeds are added only to
architectures in pairs still open, up to `max`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnncompare.core.seeds import default_round

DECISIONS = ("a_better", "b_better", "equivalent", "unsettled")
TRUNCATION = 0.75  # Waudby-Smith and Ramdas's c: no bet risks more than this share of the capital
GRID = 4001  # candidate means in [0, 1]: the sequences' resolution is 1/4000 of the range
RULE = (
    "seeds added in rounds until each pair settles: A better when a {confidence:.0%} confidence sequence for "
    "P(A > B) over paired runs excludes 1/2 (Waudby-Smith and Ramdas's betting confidence sequence){rope_words}; "
    "alpha {alpha:.3g} per pair after Bonferroni over {pairs} pair(s){split}; valid at every look"
)


def _rejected(values: Sequence[float], alpha: float, means: np.ndarray) -> np.ndarray:
    """For each candidate mean in `means`: whether the hedged capital process of Waudby-Smith and Ramdas (2024,
    Theorem 3; predictable plug-in bets truncated at `TRUNCATION`) against it reached 1 / `alpha` at any time so
    far, which puts it outside the confidence sequence for good (the running intersection)."""
    x = np.clip(np.asarray(values, dtype=float), 0.0, 1.0)
    times = np.arange(1, len(x) + 1)
    mean_hat = (0.5 + np.cumsum(x)) / (times + 1)
    variance_hat = (0.25 + np.cumsum((x - mean_hat) ** 2)) / (times + 1)
    previous = np.concatenate([[0.25], variance_hat[:-1]])  # each bet sees only the values before it
    bets = np.sqrt(2 * math.log(2 / alpha) / (previous * times * np.log1p(times)))[:, None]
    means = np.asarray(means, dtype=float)[None, :]
    with np.errstate(divide="ignore"):
        up, down = np.minimum(bets, TRUNCATION / means), np.minimum(bets, TRUNCATION / (1 - means))
    centred = x[:, None] - means
    log_up = np.cumsum(np.log1p(up * centred), axis=0)
    log_down = np.cumsum(np.log1p(-down * centred), axis=0)
    return (np.maximum(log_up, log_down) + math.log(0.5) >= math.log(1 / alpha)).any(axis=0)


def excludes(values: Sequence[float], alpha: float, mean: float) -> bool:
    """Whether the betting confidence sequence for the mean of `values` (each in [0, 1]) has excluded `mean`."""
    return bool(_rejected(values, alpha, np.array([mean]))[0]) if len(values) else False


def confidence_sequence(values: Sequence[float], alpha: float) -> tuple[float, float]:
    """The betting confidence sequence for the mean of `values` (each in [0, 1]) after all of them (running
    intersection over every earlier time): (low, high), covering the true mean at every time at once with
    probability at least 1 - `alpha`; on a grid of `GRID` points, widened by one step."""
    if not len(values):
        return 0.0, 1.0
    grid = np.linspace(0.0, 1.0, GRID)
    kept = grid[~_rejected(values, alpha, grid)]
    if not len(kept):  # the sequence shrank between two grid points: the nearest point is the estimate
        nearest = float(grid[np.argmin(np.abs(grid - np.mean(values)))])
        return nearest, nearest
    step = 1 / (GRID - 1)
    return max(0.0, float(kept.min()) - step), min(1.0, float(kept.max()) + step)


PRIOR_PRECISION = 1.0  # the t-test Bayes factor's normal prior on the standardized difference has variance 1


def t_confidence_sequence(values: Sequence[float], alpha: float, g: float = PRIOR_PRECISION) -> tuple[float, float]:
    """The anytime-valid t confidence sequence for the mean of roughly normal `values`, after all of them, with the
    running intersection over every earlier time from the second: (low, high), infinite while too few values
    could exclude anything. At n values the set is the mean +/- t*_n s / sqrt(n), where the Bayes factor of the
    one-sample t-test with a N(0, `g`) prior on the standardized effect reaches 1 / `alpha` at t*_n (closed form;
    its largest value is (1 + n g)^((n - 1) / 2), so with g = 1 nothing is excluded before n reaches 6 at alpha
    0.025)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return -math.inf, math.inf
    counts = np.arange(2, len(x) + 1)
    sums, squares = np.cumsum(x)[1:], np.cumsum(x * x)[1:]
    means = sums / counts
    spreads = np.sqrt(np.maximum(squares - counts * means**2, 0.0) / (counts - 1))
    scales = 1 + counts * g
    # BF(t) = scale^(-1/2) ((1 + u) / (1 + u / scale))^(count / 2), u = t^2 / (count - 1): solve BF = 1 / alpha
    ratios = np.exp(2 * (math.log(1 / alpha) + 0.5 * np.log(scales)) / counts)
    reachable = ratios < scales  # below, no t reaches 1 / alpha at this count
    if not reachable.any():
        return -math.inf, math.inf
    counts, means, spreads, scales, ratios = (array[reachable] for array in (counts, means, spreads, scales, ratios))
    halves = np.sqrt((counts - 1) * (ratios - 1) / (1 - ratios / scales)) * spreads / np.sqrt(counts)
    low, high = float(np.max(means - halves)), float(np.min(means + halves))
    if low > high:  # the intersection emptied, which the normal model does not expect: keep the last interval
        low, high = float(means[-1] - halves[-1]), float(means[-1] + halves[-1])
    return low, high


@dataclass(frozen=True)
class Schedule:
    """When the rule looks: after `minimum` seeds, then every `step` more, up to `maximum`."""

    minimum: int
    maximum: int
    step: int

    def looks(self) -> list[int]:
        """Every seed count the rule may look at, in order."""
        counts = list(range(self.minimum, self.maximum, self.step))
        return [*counts, self.maximum]

    def after(self, count: int) -> int:
        """The seed count of the next look after `count`."""
        return min(count + self.step, self.maximum)


@dataclass
class PairState:
    """One pair's place in the rule: its decision (one of `DECISIONS`), the seed count at which it settled, and
    its confidence sequences at the last look (in A's favour, in the headline metric's units)."""

    a: str
    b: str
    decision: str = "unsettled"
    settled_at: int | None = None
    paired_runs: int = 0
    wins: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean_difference: tuple[float, float] | None = None

    def p_a_better(self, alpha: float) -> tuple[float, float]:
        """The confidence sequence for P(A > B) at the last look."""
        return confidence_sequence(self.wins, alpha)


@dataclass
class SequentialRule:
    """The stopping rule over one study's architectures, fed one look at a time.

    `scores[name][i]` is the headline score of run i of `name` (None or absent where it failed or has not run);
    `higher_is_better` orients the differences; `rope` is in the headline metric's units, or None.
    """

    names: Sequence[str]
    schedule: Schedule
    confidence: float
    higher_is_better: bool
    rope: float | None = None
    pairs: list[PairState] = field(default_factory=list)
    seeds_run: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.pairs = [PairState(a, b) for index, a in enumerate(self.names) for b in self.names[index + 1 :]]
        self.seeds_run = {name: self.schedule.minimum for name in self.names}

    @property
    def alpha(self) -> float:
        """Each pair's error budget: 1 - confidence over the pairs (Bonferroni)."""
        return (1 - self.confidence) / max(1, len(self.pairs))

    @property
    def sequence_alpha(self) -> float:
        """Each of a pair's confidence sequences' error budget: the pair's, halved where a rope adds the second."""
        return self.alpha / 2 if self.rope is not None else self.alpha

    def look(self, count: int, scores: Mapping[str, Sequence[float | None]]) -> list[str]:
        """Decide every open pair from its first `count` paired runs; return the architectures of the pairs still
        open (empty when all settled), whose next round the study runs."""
        for pair in self.pairs:
            if pair.decision != "unsettled":
                continue
            a, b = _paired(scores[pair.a], scores[pair.b], count)
            self._decide(pair, a, b, count)
        return [name for name in self.names if any(name in (p.a, p.b) for p in self.open_pairs())]

    def open_pairs(self) -> list[PairState]:
        return [pair for pair in self.pairs if pair.decision == "unsettled"]

    def _decide(self, pair: PairState, a: np.ndarray, b: np.ndarray, count: int) -> None:
        pair.paired_runs = len(a)
        if not len(a):
            return
        sign = 1.0 if self.higher_is_better else -1.0
        differences = sign * (a - b)
        alpha = self.sequence_alpha
        wins = np.where(np.isclose(differences, 0, rtol=0, atol=1e-7), 0.5, (differences > 0).astype(float))
        pair.wins = wins
        if self.rope is not None:
            pair.mean_difference = t_confidence_sequence(differences, alpha)
            if -self.rope < pair.mean_difference[0] and pair.mean_difference[1] < self.rope:
                pair.decision, pair.settled_at = "equivalent", count
                return
        if excludes(wins, alpha, 0.5):
            pair.decision, pair.settled_at = ("a_better" if wins.mean() > 0.5 else "b_better"), count

    def rule(self) -> str:
        """The rule in words, for the report and the console."""
        rope_words = (
            f"; practically equivalent when an anytime-valid t confidence sequence for the mean difference lies "
            f"within +/- {self.rope:g}"
            if self.rope is not None
            else ""
        )
        return RULE.format(
            confidence=self.confidence,
            rope_words=rope_words,
            alpha=self.alpha,
            pairs=len(self.pairs),
            split=", halved between the two sequences" if self.rope is not None else "",
        )


def _paired(a: Sequence[float | None], b: Sequence[float | None], count: int) -> tuple[np.ndarray, np.ndarray]:
    """The runs among the first `count` that both architectures finished, in run order."""
    kept = [
        (a[index], b[index])
        for index in range(count)
        if index < len(a) and index < len(b) and a[index] is not None and b[index] is not None
    ]
    return np.array([pair[0] for pair in kept], dtype=float), np.array([pair[1] for pair in kept], dtype=float)


def replay(rule: SequentialRule, scores: Mapping[str, Sequence[float | None]], train=None) -> SequentialRule:
    """Run `rule` over its schedule: look after the first seeds, then, while pairs are open and seeds remain, have
    `train(names, count)` bring those architectures' runs up to `count` (None: the scores are all there, as when a
    report replays a finished study) and look again. Returns `rule` with every pair's decision and `seeds_run`."""
    count = rule.schedule.minimum
    while True:
        open_names = rule.look(count, scores)
        if not open_names or count >= rule.schedule.maximum:
            return rule
        count = rule.schedule.after(count)
        if train is not None:
            scores = train(open_names, count)
        for name in open_names:
            rule.seeds_run[name] = count


def rule_for(
    seeds: Mapping[str, Any],
    scores: Mapping[str, Sequence[float | None]],
    *,
    confidence: float,
    higher_is_better: bool,
    rope: float | None,
) -> SequentialRule | None:
    """The rule of a study whose `evaluation.seeds` is `seeds` ({min, max, round}), over the architectures with a
    finished run among their first `min` (None where fewer than two have one: there is no pair to settle)."""
    schedule = Schedule(seeds["min"], seeds["max"], seeds.get("round") or default_round(seeds["min"]))
    names = [name for name, found in scores.items() if any(value is not None for value in found[: schedule.minimum])]
    if len(names) < 2:
        return None
    return SequentialRule(names, schedule, confidence, higher_is_better, rope)


def scores_by_index(seeds: Sequence[int], scores: Sequence[float], all_seeds: Sequence[int]) -> list[float | None]:
    """Finished runs' headline `scores` (of evaluation `seeds`) in the order of the study's `all_seeds`, None for a
    run that failed or did not run: what the rule reads, run i of every architecture side by side."""
    by_seed = dict(zip(seeds, scores))
    return [by_seed.get(seed) for seed in all_seeds]


def summary_of(rule: SequentialRule, maximum_fits: int) -> dict[str, Any]:
    """What summary.json holds of the rule: the schedule, the seeds each architecture ran, and the fits saved
    against running `maximum` seeds for all."""
    return {
        "min": rule.schedule.minimum,
        "max": rule.schedule.maximum,
        "round": rule.schedule.step,
        "rope": rule.rope,
        "alpha_per_pair": round(rule.alpha, 10),
        "rule": rule.rule(),
        "seeds_run": dict(rule.seeds_run),
        "fits_saved": maximum_fits - sum(rule.seeds_run.values()),
    }
