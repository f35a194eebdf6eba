"""Embeddings files: chunked reads equal the array, every bad input is a one-line UserError,
and reading a .npy keeps peak memory far below the file size (no long-lived memory map)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from dimcollapse.errors import UserError
from dimcollapse.spectrum import covariance_spectrum, open_embeddings, spectrum_of_file


def _read_all(path, chunk_rows):
    ef = open_embeddings(path)
    parts, starts = [], []
    for start, rows in ef.chunks(chunk_rows):
        starts.append(start)
        parts.append(np.array(rows))
    return ef, np.concatenate(parts), starts


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f8", "<f2", "<i4"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_chunks_reassemble_the_array(tmp_path, dtype, order):
    rng = np.random.default_rng(50)
    z = np.asarray(rng.standard_normal((103, 9)) * 10, dtype=dtype, order=order)
    np.save(tmp_path / "z.npy", z)
    ef, back, starts = _read_all(tmp_path / "z.npy", 20)
    assert (ef.n, ef.dim, ef.format) == (103, 9, "npy")
    assert starts == list(range(0, 103, 20))
    np.testing.assert_array_equal(back, z)


def test_reused_buffer_chunks_are_right_when_consumed_in_turn(tmp_path):
    z = np.arange(50 * 4, dtype=np.float32).reshape(50, 4)
    np.save(tmp_path / "z.npy", z)
    total = np.zeros(4)
    for _, rows in open_embeddings(tmp_path / "z.npy").chunks(7, reuse_buffer=True):
        total += rows.sum(0)
    np.testing.assert_array_equal(total, z.sum(0))


@pytest.mark.parametrize("legacy", [False, True])
def test_pt_tensor(tmp_path, legacy):
    z = torch.randn(40, 6)
    torch.save(z, tmp_path / "z.pt", _use_new_zipfile_serialization=not legacy)
    ef, back, _ = _read_all(tmp_path / "z.pt", 16)
    assert (ef.n, ef.dim, ef.format, ef.dtype) == (40, 6, "pt", "float32")
    np.testing.assert_array_equal(back, z.numpy())
    torch.save(z.bfloat16(), tmp_path / "b.pt")
    _, back, _ = _read_all(tmp_path / "b.pt", 16)
    np.testing.assert_array_equal(back, z.bfloat16().float().numpy())


def test_spectrum_of_file_equals_in_memory(tmp_path):
    rng = np.random.default_rng(51)
    z = (rng.standard_normal((1000, 16)) * np.exp(-0.3 * np.arange(16)) + 1).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    torch.save(torch.from_numpy(z), tmp_path / "z.pt")
    want = covariance_spectrum(z, normalize=True)
    for name in ("z.npy", "z.pt"):
        acc = spectrum_of_file(tmp_path / name, chunk_rows=77)
        assert np.abs(acc.eigenvalues() - want).max() / want[0] < 1e-12


def _expect_error(path, *words):
    with pytest.raises(UserError) as info:
        open_embeddings(path)
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg
    return msg


def test_bad_files_give_one_line_errors(tmp_path):
    _expect_error(tmp_path / "missing.npy", "no such file", "missing.npy")
    _expect_error(tmp_path, "is a folder")
    (tmp_path / "z.csv").write_text("1,2\n")
    _expect_error(tmp_path / "z.csv", "unsupported file type", ".csv")
    np.save(tmp_path / "three.npy", np.zeros((4, 3, 2)))
    _expect_error(tmp_path / "three.npy", "(4, 3, 2)", "3-D", "2-D")
    np.save(tmp_path / "one.npy", np.zeros(5))
    _expect_error(tmp_path / "one.npy", "1-D")
    np.save(tmp_path / "single.npy", np.zeros((1, 5)))
    _expect_error(tmp_path / "single.npy", "N = 1", "at least 2 rows")
    np.save(tmp_path / "empty.npy", np.zeros((0, 5)))
    _expect_error(tmp_path / "empty.npy", "N = 0")
    np.save(tmp_path / "nodim.npy", np.zeros((5, 0)))
    _expect_error(tmp_path / "nodim.npy", "d = 0")
    np.save(tmp_path / "obj.npy", np.array([[1, "a"], [2, "b"]], dtype=object),
            allow_pickle=True)
    _expect_error(tmp_path / "obj.npy", "Python objects")
    np.save(tmp_path / "cplx.npy", np.zeros((3, 3), dtype=np.complex64))
    _expect_error(tmp_path / "cplx.npy", "complex64", "not a real number")
    (tmp_path / "junk.npy").write_bytes(b"not an array at all" * 10)
    _expect_error(tmp_path / "junk.npy", "cannot read", "junk.npy")
    np.save(tmp_path / "cut.npy", np.zeros((100, 8), dtype=np.float32))
    data = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-100])
    _expect_error(tmp_path / "cut.npy", "truncated")
    (tmp_path / "junk.pt").write_bytes(b"not a tensor" * 10)
    _expect_error(tmp_path / "junk.pt", "cannot read", "torch.save")
    torch.save({"z": torch.zeros(3, 3)}, tmp_path / "dict.pt")
    _expect_error(tmp_path / "dict.pt", "dict", "'z'", "not a tensor")
    torch.save(torch.zeros(3, 3, 3), tmp_path / "three.pt")
    _expect_error(tmp_path / "three.pt", "3-D")
    torch.save(torch.zeros(3, 3, dtype=torch.complex64), tmp_path / "cplx.pt")
    _expect_error(tmp_path / "cplx.pt", "complex64")


def test_nan_and_inf_rows_are_counted(tmp_path):
    z = np.ones((1000, 4), dtype=np.float32)
    z[[3, 500, 999], 1] = np.nan
    z[700, 0] = np.inf
    z[700, 2] = -np.inf  # same row: counted once
    np.save(tmp_path / "z.npy", z)
    with pytest.raises(UserError) as info:
        spectrum_of_file(tmp_path / "z.npy", chunk_rows=128)
    msg = str(info.value)
    assert "4 of 1000 rows" in msg and "NaN or Inf" in msg and "row 3" in msg


_PEAK = """
import json, sys
import numpy as np
path, mode = sys.argv[1], sys.argv[2]
if mode == "ours":
    from dimcollapse.spectrum import spectrum_of_file
    acc = spectrum_of_file(path, raw_max_samples=0, chunk_rows=2048)
    acc.eigenvalues()
else:  # the pitfall: slicing one long-lived memory map
    z = np.load(path, mmap_mode="r")
    for s in range(0, z.shape[0], 2048):
        np.asarray(z[s:s + 2048], dtype=np.float64).sum()
# VmHWM: this address space's peak (ru_maxrss would include the parent's RSS before exec)
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(json.dumps(int(hwm.split()[1]) / 1024))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_reading_a_npy_does_not_keep_it_resident(tmp_path):
    n, d = 100_000, 256  # 100 MiB of float32
    path = tmp_path / "big.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (n, d)})
        rng = np.random.default_rng(52)
        for _ in range(n // 10_000):
            f.write(rng.standard_normal((10_000, d), dtype=np.float32).tobytes())
    size_mb = path.stat().st_size / 2**20

    def peak(mode):
        out = subprocess.run([sys.executable, "-c", _PEAK, str(path), mode], check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    ours, naive = peak("ours"), peak("naive")
    print(f"peak RSS MiB: ours {ours:.0f}, naive mmap {naive:.0f}, file {size_mb:.0f}")
    assert naive > size_mb  # the measurement can see a resident file
    assert ours < naive - 0.7 * size_mb, (ours, naive, size_mb)
