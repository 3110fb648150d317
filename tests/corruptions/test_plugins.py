"""Corruption plug-ins: an entry point package and files register user-defined corruptions that run
through the registry, the seeding and a real worker process, and are refused when broken."""

import numpy as np
import pytest

from audit.corruptions import corrupt, get, names
from audit.corruptions import plugins
from audit.errors import ConfigError, CorruptionError
from tests.helpers.plugins import BROKEN, GOOD_FILE, write_file
from tests.helpers.plugins import lens_package, only_builtins_afterwards  # noqa: F401  (fixtures)

from .conftest import photo


@pytest.fixture(autouse=True)
def _only_builtins(only_builtins_afterwards):
    yield


def test_entry_point_plugin_is_registered_as_user_defined(lens_package):
    spec = get("lens_dirt")
    assert (spec.group, spec.subset, spec.origin) == ("optics", "user", "lensdirt-plugin")
    assert names("user") == names("optics") == ["lens_dirt"]
    assert "lens_dirt" not in names("benchmark") and "lens_dirt" in names("all")
    [plugin] = plugins.loaded()
    assert (plugin.kind, plugin.version, plugin.corruptions) == ("entry point", "0.3.1", ("lens_dirt",))


def test_plugin_is_seeded_like_the_builtins(lens_package):
    img = photo(48, 64)
    a = corrupt(img, "lens_dirt", 3, seed=7, image_id="x.png")
    np.testing.assert_array_equal(a, corrupt(img, "lens_dirt", 3, seed=7, image_id="x.png"))
    assert not np.array_equal(a, corrupt(img, "lens_dirt", 3, seed=8, image_id="x.png"))
    assert not np.array_equal(a, corrupt(img, "lens_dirt", 3, seed=7, image_id="y.png"))


def test_file_plugin_loads_once_with_its_hash(tmp_path):
    path = write_file(tmp_path / "banding.py", GOOD_FILE)
    [plugin] = plugins.load_files([path])
    assert plugins.load_files([str(path)]) == [plugin]  # once per process and path
    assert (plugin.kind, plugin.origin, len(plugin.sha256)) == ("file", str(path.resolve()), 64)
    assert (get("sensor_banding").group, get("sensor_banding").origin) == ("user", str(path.resolve()))


@pytest.mark.parametrize("case, message", [
    ("raises", r"plug_raises' at severity 5 .*raised ZeroDivisionError: severity five"),
    ("shape", r"plug_shape' at severity 1 .*returned shape \(16, 32, 3\).*return HxW or HxWx3"),
    ("nondeterministic", r"plug_global_rng' .*not deterministic under one seed; draw random numbers from the rng"),
    ("duplicate", r"corruption 'fog' is already registered"),
    ("writes", r"plug_writes' at severity 1 .*raised ValueError: assignment destination is read-only"),
])
def test_broken_plugin_is_refused_in_one_line(tmp_path, case, message):
    path = write_file(tmp_path / f"{case}.py", BROKEN[case])
    with pytest.raises(CorruptionError, match=message) as info:
        plugins.load_files([path])
    text = str(info.value)
    assert len(text.splitlines()) == 1 and text.startswith(f"corruption plug-in {path.resolve()} refused: ")
    assert len(names("all")) == 29 and get("fog").origin == "builtin"
    with pytest.raises(CorruptionError, match=message):  # refused again, not half-loaded
        plugins.load_files([path])


def test_plugin_that_registers_nothing_or_is_not_a_file(tmp_path):
    with pytest.raises(CorruptionError, match="registered no corruption; decorate a kernel"):
        plugins.load_files([write_file(tmp_path / "empty.py", "x = 1\n")])
    with pytest.raises(ConfigError, match="--corruption-plugin .*nope.py: not a Python file"):
        plugins.load_files([tmp_path / "nope.py"])


def test_plugin_may_not_claim_the_benchmark(tmp_path):
    text = GOOD_FILE.replace('params=', 'subset="benchmark", params=')
    with pytest.raises(CorruptionError, match="a plug-in corruption has subset 'user', got 'benchmark'"):
        plugins.load_files([write_file(tmp_path / "claims.py", text)])


def test_non_monotonic_plugin_loads_with_a_warning(tmp_path):
    text = GOOD_FILE.replace("(4, 8, 12, 16, 20)", "(20, 4, 16, 8, 12)")
    with pytest.warns(UserWarning, match="does not get stronger with severity"):
        [plugin] = plugins.load_files([write_file(tmp_path / "wobbly.py", text)])
    assert "does not get stronger" in plugin.warnings[0]
