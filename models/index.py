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
BUILD_BATCH = 4096


def _float32_csr(m: sp.spmatrix) -> sp.csr_matrix:
    """``m`` as float32 CSR with sorted indices; itself when it already is one (scipy's constructor would copy
    the data even then)."""
    if not (sp.issparse(m) and m.format == "csr" and m.dtype == np.float32):
        m = sp.csr_matrix(m).astype(np.float32)
    m.sort_indices()
    return m


def _rare_columns(rows: sp.csr_matrix, limit: int, *, step: int = 1 << 22) -> sp.csc_matrix:
    """Column-major copy of the entries of ``rows`` whose column has at most ``limit`` entries."""
    # numpy turns index arrays into 8-byte integers: counting and looking up go by slices of ``step`` entries, so
    # that a full-size 8-byte copy of the (tens of millions of) column indices never exists
    df = np.zeros(rows.shape[1], dtype=np.int64)
    for a in range(0, rows.nnz, step):
        df += np.bincount(rows.indices[a:a + step], minlength=rows.shape[1])
    rare_col = df <= limit
    keep = np.zeros(rows.nnz, dtype=bool)  # one byte per entry
    for a in range(0, rows.nnz, step):
        keep[a:min(a + step, rows.nnz)] = rare_col[rows.indices[a:a + step]]
    n = rows.shape[0]
    per_row = np.zeros(n, dtype=np.int64)
    rows_per_step = max(1, int(step * n / max(rows.nnz, 1)))
    for r in range(0, n, rows_per_step):  # reduceat casts its input to the sum's type: by slices again
        end = min(r + rows_per_step, n)
        lo, hi = rows.indptr[r], rows.indptr[end]
        block = np.append(keep[lo:hi], False)  # the False makes an empty last row's start a valid index
        per_row[r:end] = np.add.reduceat(block, rows.indptr[r:end] - lo, dtype=np.int64)
    per_row[np.diff(rows.indptr) == 0] = 0  # reduceat gives an empty row another entry's value
    index_dtype = np.int32 if rows.nnz < 2**31 else np.int64
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(per_row, out=indptr[1:])
    rare = sp.csr_matrix((rows.data[keep], rows.indices[keep], indptr), shape=rows.shape)
    del keep, per_row, indptr
    return rare.tocsc()  # scipy's C++ conversion: no temporaries beyond its output


class _RowStack:
    """Stacks batches of sparse rows into one float32 CSR matrix in preallocated arrays, instead of keeping every
    batch and copying them all at the end (twice the final size at the peak). The room is estimated from the
    first batch's entries per character of text (n-gram counts grow with the length), so it is rarely grown."""

    def __init__(self, lengths: np.ndarray) -> None:
        self.lengths = lengths
        n_rows = len(lengths)
        self.n_rows = n_rows
        self.rows = 0
        self.nnz = 0
        self.n_cols = 0
        self.indptr = np.zeros(n_rows + 1, dtype=np.int64)
        self.data = np.zeros(0, dtype=np.float32)
        self.indices = np.zeros(0, dtype=np.int32)

    def add(self, batch: sp.spmatrix) -> None:
        batch = _float32_csr(batch)
        self.n_cols = batch.shape[1]
        end = self.nnz + batch.nnz
        if end > self.data.size:
            # room for the rest at this batch's entries per character, plus 3 %
            done = self.rows + batch.shape[0]
            per_char = batch.nnz / max(int(self.lengths[self.rows:done].sum()), 1)
            want = int(end + per_char * int(self.lengths[done:].sum()) * 1.03) + 1
            self.data = _grown(self.data, want)
            self.indices = _grown(self.indices, want)
        self.data[self.nnz:end] = batch.data
        self.indices[self.nnz:end] = batch.indices
        self.indptr[self.rows + 1:self.rows + batch.shape[0] + 1] = self.nnz + batch.indptr[1:]
        self.rows += batch.shape[0]
        self.nnz = end

    def matrix(self) -> sp.csr_matrix:
        # views, not copies: the spare capacity (at most ~10 %) is cheaper than a second copy at the peak
        data, indices = self.data[:self.nnz], self.indices[:self.nnz]
        self.data = self.indices = None  # type: ignore[assignment]
        indptr = self.indptr[:self.rows + 1]
        if self.nnz < 2**31:
            indptr = indptr.astype(np.int32)
        out = sp.csr_matrix((data, indices, indptr), shape=(self.rows, self.n_cols))
        out.has_sorted_indices = True
        return out


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    out = np.empty(size, dtype=a.dtype)
    out[:a.size] = a
    return out


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
        #: postings of the char n-grams found in at most ``rare_limit`` texts (the others are left out); built from
        #: the rare entries only, never from a column-major copy of every char row
        self.rare_char = _rare_columns(self.char, self.rare_limit)
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
        if not distinct:
            w, c = featurizer.vectorize(["x"])
            return cls(texts, _float32_csr(w)[:0], _float32_csr(c)[:0], unique_of=unique_of, key=key)
        lengths = np.fromiter((len(t) for t in distinct), dtype=np.int64, count=len(distinct))
        words, chars = _RowStack(lengths), _RowStack(lengths)
        for a in range(0, len(distinct), batch):
            w, c = featurizer.vectorize(distinct[a:a + batch])
            words.add(w)
            chars.add(c)
            del w, c
        return cls(texts, words.matrix(), chars.matrix(), unique_of=unique_of, key=key)

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
