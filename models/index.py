"""A persistent TF-IDF index of statement texts: top-k retrieval for a batch of claims without a dense
claims x statements matrix.

:class:`StatementIndex` is built once from the statements (with the stance model's featurizer, so retrieval uses
the same hashed word 1-2 gram and char_wb 3-5 gram TF-IDF space as the pair features) and answers any number of
claim batches. Identical statement texts (boilerplate repeated across releases) are vectorised and stored once.
It keeps, as float32 sparse matrices, the L2-normalised word rows column-major (an inverted index: a claim's
terms gather their posting lists), the char rows row-major, and the postings of the rare char n-grams (document
frequency at most :data:`RARE_FRACTION` of the texts) column-major; plus the normalised statement texts.

Ranking is the mean of the word and char cosines, exactly as :meth:`StanceModel.retrieve` computes it for all
pairs, but only for a shortlist. For each chunk of claims, one sparse product gives the word cosines against every
text (a ``chunk x n`` float32 block, at most :data:`BLOCK_ELEMENTS` elements) and one more the char cosines over
the rare char n-grams only (a lower bound of the char cosine that finds paraphrases and inflections sharing few
words). Per claim, the ``shortlist`` best texts by each of the two (ties at the cut included) are re-ranked by the
exact mean, its char cosines computed for the shortlist only. A claim for which fewer texts than the shortlist
holds score above zero, and an index no larger than the shortlist, is ranked over all texts. Equal scores are
ordered by the lower statement position, like a stable sort of the exact matrix.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from .text import normalize

__all__ = ["StatementIndex", "SHORTLIST_MIN", "SHORTLIST_FACTOR", "BLOCK_ELEMENTS", "RARE_FRACTION"]

#: Texts re-ranked per claim and per shortlist (word, rare char): ``max(SHORTLIST_MIN, SHORTLIST_FACTOR * top_k)``.
SHORTLIST_MIN = 50
SHORTLIST_FACTOR = 10
#: A char n-gram is "rare" when at most this fraction of the texts (and at least 50) contain it.
RARE_FRACTION = 0.01
#: Largest dense claims x statements block of word cosines held at once (float32: 32 MB).
BLOCK_ELEMENTS = 8_000_000
#: Statements vectorised at a time while building (bounds the float64 intermediates).
BUILD_BATCH = 8192


def _float32_csr(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float32)
    m.sort_indices()
    return m


class StatementIndex:
    """TF-IDF rows of a fixed list of statements; search answers positions in :attr:`texts`."""

    def __init__(self, texts: Sequence[str], word: sp.spmatrix, char: sp.spmatrix, *,
                 unique_of: np.ndarray | None = None, key: Any = None) -> None:
        """``word``/``char``: one row per distinct text; ``unique_of[i]``: the row of ``texts[i]`` (default: row i)."""
        self.texts: list[str] = list(texts)
        n = len(self.texts)
        self.unique_of = (np.arange(n, dtype=np.int32) if unique_of is None
                          else np.asarray(unique_of, dtype=np.int32))
        if self.unique_of.shape != (n,) or word.shape[0] != char.shape[0] or (
                n and (self.unique_of.min() < 0 or self.unique_of.max() >= word.shape[0])):
            raise ValueError("every statement text needs a word and a char row")
        u = word.shape[0]
        # positions of each row's texts, ascending: row r has positions[starts[r]:starts[r + 1]]
        self._positions = np.argsort(self.unique_of, kind="stable").astype(np.int32)
        self._starts = np.searchsorted(self.unique_of[self._positions], np.arange(u + 1)).astype(np.int64)
        self.word = sp.csc_matrix(word, dtype=np.float32)  # column-major: a term's postings are contiguous
        self.word.sort_indices()
        self.char = _float32_csr(char)
        self.rare_limit = max(50, int(RARE_FRACTION * u))
        char_cols = self.char.tocsc()
        df = np.diff(char_cols.indptr)
        char_cols.data[np.repeat(df > self.rare_limit, df)] = 0
        char_cols.eliminate_zeros()
        #: postings of the char n-grams found in at most ``rare_limit`` texts (the others are emptied)
        self.rare_char = char_cols
        #: What the index was built for (e.g. a model version), for callers that cache it.
        self.key = key

    @classmethod
    def build(cls, featurizer: Any, statements: Sequence[str], *, key: Any = None,
              batch: int = BUILD_BATCH) -> "StatementIndex":
        """Vectorise the distinct texts of ``statements`` (normalised as :func:`models.text.normalize` does) with
        ``featurizer.vectorize``, ``batch`` texts at a time, and index them."""
        texts = [normalize(s) for s in statements]
        rows: dict[str, int] = {}
        unique_of = np.fromiter((rows.setdefault(t, len(rows)) for t in texts), dtype=np.int32, count=len(texts))
        distinct = list(rows)
        del rows
        words: list[sp.csr_matrix] = []
        chars: list[sp.csr_matrix] = []
        for a in range(0, len(distinct), batch):
            w, c = featurizer.vectorize(distinct[a:a + batch])
            words.append(_float32_csr(w))
            chars.append(_float32_csr(c))
        if not distinct:
            w, c = featurizer.vectorize(["x"])
            words, chars = [_float32_csr(w)[:0]], [_float32_csr(c)[:0]]
        return cls(texts, sp.vstack(words, format="csr"), sp.vstack(chars, format="csr"), unique_of=unique_of,
                   key=key)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def distinct(self) -> int:
        """Number of distinct texts (rows of the matrices)."""
        return int(self.word.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the sparse matrices and position arrays (the texts not counted)."""
        arrays = [a for m in (self.word, self.char, self.rare_char) for a in (m.data, m.indices, m.indptr)]
        return sum(int(a.nbytes) for a in arrays + [self.unique_of, self._positions, self._starts])

    def search(self, claim_word: sp.spmatrix, claim_char: sp.spmatrix, top_k: int, *,
               shortlist: int | None = None, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``top_k`` statements for each claim row, given the claims' L2-normalised (word, char) TF-IDF rows.

        Returns ``(positions, relevance)``, both ``(n_claims, min(top_k, len(self)))``, best first; relevance is
        the mean of the word and char cosines. ``chunk`` claims are scored per sparse product (default: as many
        as fit in :data:`BLOCK_ELEMENTS`); ``shortlist`` is the number of texts re-ranked per claim and signal.
        """
        n, m = len(self), claim_word.shape[0]
        k = max(0, min(int(top_k), n))
        if m == 0 or k == 0:
            return np.zeros((m, k), dtype=np.int64), np.zeros((m, k))
        short = max(k, shortlist if shortlist is not None else max(SHORTLIST_MIN, SHORTLIST_FACTOR * k))
        step = max(1, int(chunk if chunk is not None else BLOCK_ELEMENTS // max(self.distinct, 1)))
        cw = _float32_csr(claim_word)
        cc = _float32_csr(claim_char)
        positions = np.zeros((m, k), dtype=np.int64)
        relevance = np.zeros((m, k))
        for a in range(0, m, step):
            b = min(m, a + step)
            self._search_chunk(cw[a:b], cc[a:b], k, short, positions[a:b], relevance[a:b])
        return positions, relevance

    def _block(self, claims: sp.csr_matrix, postings_by_term: sp.csc_matrix) -> np.ndarray:
        """Dense ``(chunk, distinct)`` float32 cosines: the claims' terms gather their postings (one sparse product)."""
        terms = np.unique(claims.indices)
        if terms.size == 0:
            return np.zeros((claims.shape[0], self.distinct), dtype=np.float32)
        postings = postings_by_term[:, terms].T  # (t, distinct) csr: only the claims' terms
        return (claims[:, terms] @ postings).toarray()

    def _top_rows(self, scores: np.ndarray, short: int) -> np.ndarray:
        """The ``short`` best rows of ``scores`` (those tied with the last one included), all if it has fewer."""
        u = scores.shape[0]
        if short >= u:
            return np.arange(u)
        cut = np.partition(scores, u - short)[u - short]
        if cut > 0:
            return np.flatnonzero(scores >= cut)
        return np.flatnonzero(scores > 0)

    def _search_chunk(self, cw: sp.csr_matrix, cc: sp.csr_matrix, k: int, short: int,
                      pos_out: np.ndarray, rel_out: np.ndarray) -> None:
        u = self.distinct
        W = self._block(cw, self.word)
        everything = short >= u
        R = None if everything else self._block(cc, self.rare_char)
        cands: list[np.ndarray] = []
        full: list[int] = []  # claims ranked over all texts
        for r in range(W.shape[0]):
            c = np.arange(u) if everything else np.union1d(self._top_rows(W[r], short), self._top_rows(R[r], short))
            if c.size < short:
                # fewer than ``short`` texts share anything rare or any word with the claim: rank it over all
                full.append(r)
                c = np.zeros(0, dtype=np.int64)
            cands.append(c)
        sizes = np.array([c.size for c in cands])
        flat = np.concatenate(cands).astype(np.int64)
        owner = np.repeat(np.arange(len(cands)), sizes)
        # exact char cosines of the shortlisted (claim, text) pairs: one product over their distinct texts
        uniq, inv = np.unique(flat, return_inverse=True)
        if uniq.size:
            C = (cc @ self.char[uniq].T).toarray()  # (chunk, |candidates of the chunk|), small
            char_cos = C[owner, inv].astype(np.float64)
        else:
            char_cos = np.zeros(0)
        mean = 0.5 * (W[owner, flat].astype(np.float64) + char_cos)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        full_set = set(full)
        for r in range(len(cands)):
            if r in full_set:
                rows = np.arange(u)
                score = 0.5 * (W[r].astype(np.float64) + self.char @ cc[r].toarray().ravel().astype(np.float64))
            else:
                rows, score = flat[offsets[r]:offsets[r + 1]], mean[offsets[r]:offsets[r + 1]]
            pos_out[r], rel_out[r] = self._expand(rows, score, k)

    def _expand(self, rows: np.ndarray, score: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best statement positions given scored rows; equal scores: the lower position first."""
        if rows.size > 4 * k:  # only rows scoring at least the k-th best can matter
            cut = np.partition(score, rows.size - k)[rows.size - k]
            keep = score >= cut
            rows, score = rows[keep], score[keep]
        got_pos: list[np.ndarray] = []
        got_rel: list[np.ndarray] = []
        count = 0
        last = None
        for i in np.lexsort((rows, -score)):
            if count >= k and score[i] != last:
                break
            ps = self._positions[self._starts[rows[i]]:self._starts[rows[i] + 1]][:k]
            got_pos.append(ps)
            got_rel.append(np.full(ps.size, score[i]))
            count += ps.size
            last = score[i]
        pos, rel = np.concatenate(got_pos), np.concatenate(got_rel)
        order = np.lexsort((pos, -rel))[:k]
        return pos[order], rel[order]
