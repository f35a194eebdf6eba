"""Embeddings files (.npy, .pt) read chunk by chunk, and the spectrum of a whole file.

A `.npy` file is never loaded whole, and not kept memory-mapped either: pages of a mapped file
count in the process's resident memory while they stay mapped, so slicing one long-lived
``np.load(mmap_mode="r")`` array makes RSS grow to the size of the file. We parse the header
(shape, dtype, data offset) and read each chunk of rows at its file offset into a buffer, so
peak memory is O(d^2 + chunk) whatever N is (bench/bench_spectrum.py measures it). Fortran-order
files are read through a memory map that is opened and dropped for each chunk.

A `.pt` file must hold one N x d tensor (``torch.save(z, path)``); it is opened with
``torch.load(mmap=True)`` when the file format allows, otherwise loaded whole.

Bad files raise `dimcollapse.errors.UserError` with a one-line message naming the problem.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from dimcollapse.errors import UserError
from dimcollapse.spectrum.accumulator import SpectrumAccumulator

if TYPE_CHECKING:
    import torch

SUFFIXES = (".npy", ".pt", ".pth")
_FIX = "pass an N x d array saved with np.save(path, z) or torch.save(z, path)"


def default_chunk_rows(dim: int) -> int:
    """Rows per chunk: ~16M values (64 MiB in float32), at least 64 and at most 65,536 rows.

    Larger chunks make the rank-k update more efficient: at d = 2,048 on our 2-core machine,
    float32 syrk over 100,000 rows took 5.3 / 4.7 / 4.2 / 4.1 s with chunks of 2,048 / 4,096 /
    8,192 / 16,384 rows (min of 3, shared machine); 8,192 is the default there.
    """
    return int(min(65_536, max(64, (1 << 24) // max(dim, 1))))


@dataclass
class EmbeddingsFile:
    """An opened, validated N x d embeddings file. Iterate `chunks()` to read it."""

    path: Path
    format: str  # "npy" or "pt"
    n: int
    dim: int
    dtype: str  # as stored, e.g. "float32"
    _offset: int = 0
    _fortran: bool = False
    _np_dtype: np.dtype | None = None
    _tensor: torch.Tensor | None = None  # the loaded (possibly memory-mapped) torch tensor for .pt

    def describe(self) -> dict:
        """Where the rows came from, for JSON outputs."""
        return {"path": str(self.path), "format": self.format, "n": self.n, "dim": self.dim,
                "dtype": self.dtype}

    def chunks(self, chunk_rows: int | None = None, *, reuse_buffer: bool = False
               ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first_row, rows) with rows a numpy array of shape (m, dim), file order.

        With reuse_buffer=True a .npy file is read into one buffer that the next chunk
        overwrites: use each chunk before asking for the next (what `spectrum_of_file` does).
        """
        rows = chunk_rows or default_chunk_rows(self.dim)
        if self.format == "pt":
            yield from self._pt_chunks(rows)
        elif self._fortran:
            yield from self._fortran_chunks(rows)
        else:
            yield from self._npy_chunks(rows, reuse_buffer)

    def _npy_chunks(self, rows: int, reuse: bool):
        dtype = self._np_dtype
        assert dtype is not None  # set for .npy files
        row_bytes = self.dim * dtype.itemsize
        buf = None
        with open(self.path, "rb", buffering=0) as f:
            for start in range(0, self.n, rows):
                m = min(rows, self.n - start)
                if buf is None or not reuse or buf.shape[0] < m:
                    buf = np.empty((m, self.dim), dtype=dtype)
                out = buf[:m]
                view = out.data.cast("B")  # out.data: memoryview(out)
                f.seek(self._offset + start * row_bytes)
                got = 0
                while got < m * row_bytes:
                    k = f.readinto(view[got:])
                    if not k:
                        raise UserError(f"{self.path}: file ended early at row {start}: "
                                        "the file is truncated; re-save it")
                    got += k
                yield start, out

    def _fortran_chunks(self, rows: int):
        dtype = self._np_dtype
        assert dtype is not None  # set for .npy files
        for start in range(0, self.n, rows):
            mm = np.memmap(self.path, dtype=dtype, mode="r", offset=self._offset,
                           shape=(self.n, self.dim), order="F")
            chunk = np.array(mm[start:start + rows])  # copy, then unmap: pages leave RSS
            del mm
            yield start, chunk

    def _pt_chunks(self, rows: int):
        # torch: only .pt files need it (.npy files are read without torch)
        # torch: only .pt files need it (.npy files are read without torch)
        import torch

        t = self._tensor
        assert t is not None  # set for .pt files
        for start in range(0, self.n, rows):
            c = t[start:start + rows]
            if c.dtype == torch.bfloat16:
                c = c.float()
            yield start, c.numpy()


def open_embeddings(path: str | os.PathLike) -> EmbeddingsFile:
    """Open and validate an N x d embeddings file (.npy or .pt); reads only the header.

    Raises UserError for: missing file, unsupported suffix, unreadable contents, wrong rank,
    N < 2, d < 1, non-real dtype.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"no such file: {path}; {_FIX}")
    if path.is_dir():
        raise UserError(f"{path} is a folder, not an embeddings file; {_FIX}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: unsupported file type {suffix or '(no suffix)'!r}; "
                        f"expected one of {', '.join(SUFFIXES)}")
    ef = _open_npy(path) if suffix == ".npy" else _open_pt(path)
    if ef.n < 2:
        raise UserError(f"{path}: has N = {ef.n} rows; a covariance needs at least 2 rows")
    if ef.dim < 1:
        raise UserError(f"{path}: has d = 0 columns; embeddings need at least one dimension")
    return ef


def _check_rank(path: Path, shape: tuple) -> None:
    if len(shape) != 2:
        raise UserError(f"{path}: array has shape {tuple(shape)} ({len(shape)}-D); expected a "
                        "2-D N x d matrix (reshape it to (N, d) before saving)")


def _check_dtype(path: Path, kind: str, name: str) -> None:
    if kind not in "fiu":
        raise UserError(f"{path}: dtype {name} is not a real number type; embeddings must be "
                        "float (or integer) values")


def _open_npy(path: Path) -> EmbeddingsFile:
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            offset = f.tell()
        size = path.stat().st_size
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"cannot read {path} as a .npy array ({_one_line(err)}); "
                        f"{_FIX}") from None
    if dtype.hasobject:
        raise UserError(f"{path}: holds Python objects (pickled), not numbers; {_FIX}")
    _check_rank(path, shape)
    _check_dtype(path, dtype.kind, str(dtype))
    need = offset + int(np.prod(shape)) * dtype.itemsize
    if size < need:
        raise UserError(f"{path}: file is truncated ({size} bytes, the header promises {need}); "
                        "re-save it")
    return EmbeddingsFile(path, "npy", int(shape[0]), int(shape[1]), str(dtype),
                          _offset=offset, _fortran=bool(fortran), _np_dtype=dtype)


def _open_pt(path: Path) -> EmbeddingsFile:
    # torch: only .pt files need it (.npy files are read without torch)
    import torch

    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)  # legacy format
    except Exception as err:  # torch raises many types for a bad file; all mean "unreadable"
        raise UserError(f"cannot read {path}: not a tensor file written by torch.save, or "
                        f"damaged ({type(err).__name__}: {_one_line(err)}); {_FIX}") from None
    if not isinstance(obj, torch.Tensor):
        what = type(obj).__name__
        if isinstance(obj, dict):
            what += f" with keys {sorted(map(str, obj))[:8]}"
        raise UserError(f"{path}: holds a {what}, not a tensor; save the N x d tensor itself "
                        "with torch.save(z, path)")
    _check_rank(path, tuple(obj.shape))
    if obj.is_complex() or obj.dtype == torch.bool:
        raise UserError(f"{path}: dtype {obj.dtype} is not a real number type; embeddings "
                        "must be float (or integer) values")
    dtype = str(obj.dtype).replace("torch.", "")
    return EmbeddingsFile(path, "pt", int(obj.shape[0]), int(obj.shape[1]), dtype,
                          _tensor=obj)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]


def spectrum_of_file(source, *, normalize: bool = True, center: bool = True,
                     precision: str = "float64", raw_max_samples: int | None = 25_600,
                     chunk_rows: int | None = None, progress: bool = False):
    """Stream an embeddings file through a `SpectrumAccumulator`; returns the accumulator.

    source: a path or an `EmbeddingsFile`. Rows with NaN or Inf raise UserError naming how
    many there are and the first one (the whole file is scanned to count them).
    progress: show a tqdm bar over rows on stderr.
    """
    ef = source if isinstance(source, EmbeddingsFile) else open_embeddings(source)
    acc = SpectrumAccumulator(ef.dim, normalize=normalize, center=center, precision=precision,
                              raw_max_samples=raw_max_samples, device="cpu")
    check = ef.dtype.startswith(("float", "bfloat"))
    bad_rows, first_bad = 0, None
    with tqdm(total=ef.n, unit="row", unit_scale=True, disable=not progress, file=sys.stderr,
              desc=ef.path.name, leave=False) as bar:
        for start, rows in ef.chunks(chunk_rows, reuse_buffer=True):
            if check:
                finite = np.isfinite(rows).all(axis=1)
                if not finite.all():
                    bad = np.flatnonzero(~finite)
                    bad_rows += bad.size
                    first_bad = start + int(bad[0]) if first_bad is None else first_bad
            if not bad_rows:  # once a bad row is seen, only count the rest
                acc.update(rows)
            bar.update(rows.shape[0])
    if bad_rows:
        raise UserError(f"{ef.path}: {bad_rows} of {ef.n} rows contain NaN or Inf values "
                        f"(first: row {first_bad}); remove or fix those rows")
    return acc
