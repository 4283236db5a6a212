"""The portfolio loss simulation: the one-factor Gaussian model (Vasicek), vectorised with numpy.

In each scenario one systematic factor Z ~ N(0, 1) is drawn. Given Z, loan i defaults with probability

    p_i(Z) = Φ( (Φ⁻¹(PD_i) − √ρ · Z) / √(1 − ρ) )

independently of the other loans (its own shock is the rest of a standard normal with correlation ρ to
the factor). That is exactly the Gaussian copula with a common asset correlation ρ.

How it is drawn, exactly and cheaply: loans are grouped into blocks that share a bank, a month of the
horizon and a PD. Given Z, every loan of a block has the same p, so the number of defaults in a block is
Binomial(n, p), and which loans default is a uniformly random subset of that size — the same law as n
independent Bernoulli(p) draws, at a cost that follows the number of defaults rather than loans ×
scenarios. (Where more than half of a block defaults, the survivors are drawn instead.) Distinct loans
are picked by drawing positions and letting an `owner` array, one slot per (scenario, loan) of a chunk,
keep the first of any duplicates; the few duplicates are drawn again.

Scenarios are processed in chunks sized so that the per-chunk arrays hold about `CHUNK_CELLS` loan
slots (bounded memory whatever the book); the chunk size depends only on the number of loans, so the
same inputs always consume the same random stream. Amounts are sums of whole fen below 2⁵³, so the
defaulted principal of a block is exact in float64 whatever the order of summation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

CHUNK_CELLS = 1 << 19  # (scenario, loan) slots per chunk: 2M → about 25 MB of working arrays
MAX_CHUNK_SCENARIOS = 4096
BATCH_SCENARIOS = 256  # the factor and the blocks' default counts are drawn for this many at once
BATCH_CELLS = 1 << 20  # … but for at most this many (scenario, block) pairs


@dataclass(frozen=True)
class Book:
    """The loans to simulate, as arrays of equal length, in a fixed order (the caller's)."""

    ead_fen: Ints  # exposure at default: outstanding principal, fen
    pd: Floats  # probability of default within the horizon, 0–1
    month: Ints  # 0-based month of the horizon in which a default falls
    bank: Ints  # 0-based index of the loan's bank

    def __post_init__(self) -> None:
        n = len(self.ead_fen)
        if not (len(self.pd) == len(self.month) == len(self.bank) == n):
            raise ValueError("the arrays of a book must have the same length")
        if n and (self.pd.min() < 0 or self.pd.max() > 1):
            raise ValueError("probabilities of default must lie within 0–1")
        if n and self.ead_fen.min() < 0:
            raise ValueError("exposures must not be negative")


@dataclass(frozen=True)
class Simulation:
    """Per scenario: the defaulted principal of each bank (fen) and the fund's loss in each month."""

    defaulted_by_bank: Floats  # scenarios × banks
    loss_by_month: Floats  # scenarios × months

    @property
    def loss(self) -> Floats:
        """The fund's loss over the horizon in each scenario."""
        total: Floats = self.loss_by_month.sum(axis=1)
        return total


@dataclass(frozen=True)
class _Blocks:
    start: Ints  # first position of each block in the sorted book
    size: Ints
    threshold: Floats  # Φ⁻¹(PD) of the block
    cell: Ints  # bank × months + month
    total_fen: Floats  # the block's whole exposure
    ead: Floats  # exposures in block order


def _blocks(book: Book, months: int) -> _Blocks:
    order = np.lexsort((book.pd, book.month, book.bank))  # stable: ties keep the caller's order
    bank, month, pd = book.bank[order], book.month[order], book.pd[order]
    ead = book.ead_fen[order].astype(np.float64)
    new = np.ones(len(order), dtype=bool)
    new[1:] = (bank[1:] != bank[:-1]) | (month[1:] != month[:-1]) | (pd[1:] != pd[:-1])
    start = np.flatnonzero(new).astype(np.int64)
    size = np.diff(np.append(start, len(order))).astype(np.int64)
    return _Blocks(
        start=start,
        size=size,
        threshold=ndtri(pd[start]),
        cell=(bank[start] * months + month[start]).astype(np.int64),
        total_fen=np.add.reduceat(ead, start) if len(start) else np.zeros(0),
        ead=ead,
    )


def chunk_scenarios(loans: int) -> int:
    return int(max(1, min(MAX_CHUNK_SCENARIOS, CHUNK_CELLS // max(1, loans))))


def simulate(
    book: Book,
    *,
    banks: int,
    months: int,
    loss_per_fen: Floats,
    scenarios: int,
    seed: int,
    correlation: float,
) -> Simulation:
    """Draw `scenarios` scenarios. `loss_per_fen[b]` is what a defaulted fen of bank b costs the fund
    (its share × loss given default)."""
    if not 0 <= correlation < 1:
        raise ValueError("correlation must lie in [0, 1)")
    if len(loss_per_fen) != banks or (len(book.bank) and int(book.bank.max()) >= banks):
        raise ValueError("every loan's bank needs its loss per fen")
    if len(book.month) and (int(book.month.min()) < 0 or int(book.month.max()) >= months):
        raise ValueError("default months must lie within the horizon")
    rng = np.random.default_rng(seed)
    defaulted = np.zeros((scenarios, banks))
    by_month = np.zeros((scenarios, months))
    blocks = _blocks(book, months)
    n, b = len(book.ead_fen), len(blocks.start)
    if n == 0:
        return Simulation(defaulted, by_month)
    per_chunk = chunk_scenarios(n)
    # the factor and each block's number of defaults are drawn for a batch of chunks at a time
    batch = per_chunk * max(1, min(BATCH_SCENARIOS, BATCH_CELLS // b) // per_chunk)
    cells = banks * months
    drawer = _Drawer(rng, blocks.ead, per_chunk * n)
    loading, spread = np.sqrt(correlation), np.sqrt(1.0 - correlation)
    slots = (np.arange(per_chunk, dtype=np.intp)[:, None] * n + blocks.start[None, :]).ravel()
    starts = np.tile(blocks.start, per_chunk)
    sizes = np.tile(blocks.size.astype(np.float64), per_chunk)
    rows = np.arange(batch, dtype=np.intp)[:, None]
    per_fen = loss_per_fen[None, :, None]
    for first in range(0, scenarios, batch):
        c = min(batch, scenarios - first)
        z = rng.standard_normal(c)
        p = ndtr((blocks.threshold[None, :] - loading * z[:, None]) / spread)  # PD 0 → −∞ → 0; PD 1 → 1
        k = rng.binomial(np.broadcast_to(blocks.size, (c, b)), p).astype(np.int64)
        survivors = k * 2 > blocks.size[None, :]  # draw the survivors of a mostly defaulting block
        need = np.where(survivors, blocks.size - k, k)
        drawn = np.concatenate(
            [
                drawer.draw(need[i : i + per_chunk].ravel(), slots, starts, sizes)
                for i in range(0, c, per_chunk)
            ]
        ).reshape(c, b)
        sums = np.where(survivors, blocks.total_fen[None, :] - drawn, drawn).ravel()
        cell = (rows[:c] * cells + blocks.cell[None, :]).ravel()
        per_cell = np.bincount(cell, weights=sums, minlength=c * cells).reshape(c, banks, months)
        defaulted[first : first + c] = per_cell.sum(axis=2)
        by_month[first : first + c] = (per_cell * per_fen).sum(axis=1)
    return Simulation(defaulted, by_month)


class _Drawer:
    """Draws distinct loans within blocks, on work arrays kept between chunks (no allocation per draw).

    `owner` has a slot per (scenario of the chunk, loan) and holds the id of the draw that took it; ids
    grow from chunk to chunk, so a slot holding an id from before the chunk's first is free again."""

    def __init__(self, rng: np.random.Generator, ead: Floats, slots: int) -> None:
        self.rng = rng
        self.ead = ead  # exposure by position
        self.owner = np.zeros(slots, dtype=np.int32)
        self.next_id = 1
        self.capacity = 0
        self._grow(1 << 16)

    def _grow(self, total: int) -> None:
        if total <= self.capacity:
            return
        self.capacity = max(total, 2 * self.capacity)
        self.uniform = np.empty(self.capacity)
        self.exposure = np.empty(self.capacity)
        self.keys = np.empty(self.capacity, dtype=np.intp)  # indices as numpy takes them: no cast
        self.positions = np.empty(self.capacity, dtype=np.intp)
        self.ids = np.empty(self.capacity, dtype=np.int32)
        self.held = np.empty(self.capacity, dtype=np.int32)
        self.lost = np.empty(self.capacity, dtype=bool)
        self.count_up = np.arange(self.capacity, dtype=np.int32)

    def draw(self, need: Ints, slot: Ints, start: Ints, size: Floats) -> Floats:
        """For each (scenario, block) pair, the exposure of `need` distinct loans picked at random from
        its block (`slot`: the pair's first slot, `size`: its loans)."""
        sums = np.zeros(len(need))
        if self.next_id > 1 << 30:  # long before the ids run out (a chunk draws far fewer): reset
            self.owner.fill(0)
            self.next_id = 1
        chunk_start = self.next_id
        first = True
        while True:
            pairs = np.flatnonzero(need)
            if not len(pairs):
                return sums
            count = need[pairs]
            total = int(count.sum())
            self._grow(total)
            u, keys, ids = self.uniform[:total], self.keys[:total], self.ids[:total]
            held, lost, exposure = self.held[:total], self.lost[:total], self.exposure[:total]
            self.rng.random(out=u)
            np.multiply(u, np.repeat(size[pairs], count), out=u)
            positions = self.positions[:total]
            np.copyto(positions, u, casting="unsafe")  # the place in the block (truncated: 0 … size − 1)
            np.add(positions, np.repeat(start[pairs], count), out=positions)  # … in the book
            np.add(positions, np.repeat(slot[pairs] - start[pairs], count), out=keys)  # … in the chunk
            np.add(self.count_up[:total], np.int32(self.next_id), out=ids)
            self.next_id += total
            if first:  # the pairs' slots are all free: of duplicates, the last written holds the slot
                self.owner[keys] = ids
                np.take(self.owner, keys, out=held)
                np.not_equal(held, ids, out=lost)
            else:  # a slot taken in an earlier round (an id of this chunk) is lost too
                np.take(self.owner, keys, out=held)
                free = held < chunk_start
                self.owner[keys[free]] = ids[free]
                np.take(self.owner, keys, out=held)
                np.not_equal(held, ids, out=lost)
            np.take(self.ead, positions, out=exposure)
            bounds = np.cumsum(count) - count
            sums[pairs] += np.add.reduceat(exposure, bounds)
            lost_at = np.flatnonzero(lost)  # few: duplicates, drawn again in the next round
            if not len(lost_at):
                return sums
            pair_of = np.searchsorted(bounds, lost_at, side="right") - 1
            sums[pairs] -= np.bincount(pair_of, weights=exposure[lost_at], minlength=len(pairs))
            need = np.zeros_like(need)
            need[pairs] = np.bincount(pair_of, minlength=len(pairs))
            first = False


# --- figures from the scenarios -------------------------------------------------------------------------


def order_statistic(sorted_values: Floats, q: float) -> float:
    """The value at quantile `q` of sorted values: the ⌈q·n⌉-th smallest (a value some scenario had)."""
    n = len(sorted_values)
    index = min(n - 1, max(0, int(np.ceil(q * n)) - 1))
    return float(sorted_values[index])


def tail_mean(sorted_values: Floats, q: float) -> float:
    """Expected shortfall at `q`: the mean of the worst ⌈(1 − q)·n⌉ values."""
    n = len(sorted_values)
    tail = max(1, int(np.ceil((1 - q) * n - 1e-9)))
    return float(sorted_values[n - tail :].mean())


def vasicek_quantile(pd: float, correlation: float, q: float) -> float:
    """The loss rate (share of exposure defaulting) that a large homogeneous portfolio exceeds with
    probability 1 − q: Φ((Φ⁻¹(PD) + √ρ · Φ⁻¹(q)) / √(1 − ρ))."""
    return float(ndtr((ndtri(pd) + np.sqrt(correlation) * ndtri(q)) / np.sqrt(1 - correlation)))
