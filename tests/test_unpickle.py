"""`audit.io.unpickle`: data pickles load, pickles that would call anything else stop before it runs."""

import io
import os
import pickle
import subprocess

import numpy as np
import pytest

from audit.errors import DatasetError
from audit.io.unpickle import loads_restricted


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_cifar_shaped_pickles_load_under_every_protocol(protocol):
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": [3, 8], b"data": data,
             b"filenames": [b"a.png", b"b.png"], b"n": np.int64(2), b"f": 1.5, b"t": (1, None, True)}
    got = loads_restricted(pickle.dumps(batch, protocol=protocol), "test_batch")
    assert got.keys() == batch.keys() and got[b"labels"] == [3, 8] and got[b"t"] == (1, None, True)
    np.testing.assert_array_equal(got[b"data"], data)
    assert got[b"data"].dtype == np.uint8


def test_python2_style_byte_strings_decode_as_bytes():
    # a Python 2 `str` pickles as BINSTRING; CIFAR's files are full of them
    raw = b"\x80\x02}q\x00U\x06labelsq\x01]q\x02K\x03as."
    assert loads_restricted(raw, "batch") == {b"labels": [3]}


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Exec:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


class _Popen:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return subprocess.Popen, (["touch", str(self.marker)],)


@pytest.mark.parametrize("payload", [_System, _Exec, _Popen])
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_crafted_pickle_runs_nothing_and_is_one_line(tmp_path, payload, protocol):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": payload(marker), b"labels": [1]}, protocol=protocol)
    with pytest.raises(DatasetError) as err:
        loads_restricted(evil, "test_batch")
    assert "\n" not in str(err.value) and "test_batch" in str(err.value) and "never needs" in str(err.value)
    assert not marker.exists()


def test_numpy_reconstruct_is_only_allowed_as_numpy_writes_it():
    # _reconstruct(ndarray, (10**12,), "b") would reserve a terabyte; numpy itself always writes shape (0,)
    raw = (b"\x80\x02cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
           b"\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85U\x01b\x87R.")
    with pytest.raises(DatasetError, match="never writes"):
        loads_restricted(raw, "batch")


@pytest.mark.parametrize("raw", [b"", b"\x80", b"garbage", pickle.dumps({b"a": 1})[:-3], b"\x80\x04\x95" + b"\xff" * 8])
def test_truncated_or_garbage_streams_are_dataset_errors(raw):
    with pytest.raises(DatasetError):
        loads_restricted(raw, "batch")


def test_persistent_ids_are_refused():
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)
    pickler.persistent_id = lambda obj: "x" if obj == "p" else None
    pickler.dump(["p"])
    with pytest.raises(DatasetError, match="persistent"):
        loads_restricted(buf.getvalue(), "batch")


def test_numpy_1_era_pickles_like_the_real_cifar_files_load():
    # the published CIFAR-10 batches were written by numpy 1 (numpy.core.multiarray); numpy 2 writes numpy._core
    raw = pickle.dumps({b"data": np.full((1, 3072), 7, np.uint8), b"labels": [1]}, protocol=2)
    old_style = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert old_style != raw
    got = loads_restricted(old_style, "test_batch")
    assert got[b"data"].dtype == np.uint8 and int(got[b"data"][0, 0]) == 7
