"""`audit list` and the group's exit codes."""

import json

from click.testing import CliRunner

from audit.cli.main import cli


def test_list_corruptions_table_and_json():
    result = CliRunner().invoke(cli, ["list", "corruptions"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 30 and lines[0].split() == ["name", "group", "subset", "origin"]
    assert lines[1].split() == ["gaussian_noise", "noise", "benchmark", "builtin"]
    assert lines[19].split() == ["saturate", "digital", "holdout", "builtin"]
    assert lines[-1].split() == ["brownish_noise", "cbar", "cbar", "builtin"]
    rows = json.loads(CliRunner().invoke(cli, ["list", "corruptions", "--json", "--subset", "holdout"]).output)
    assert [r["name"] for r in rows] == ["speckle_noise", "gaussian_blur", "spatter", "saturate"]



def test_list_cbar_suite():
    result = CliRunner().invoke(cli, ["list", "corruptions", "--subset", "cbar"])
    rows = [line.split() for line in result.output.strip().splitlines()[1:]]
    assert result.exit_code == 0 and len(rows) == 10
    assert all(r[1:] == ["cbar", "cbar", "builtin"] for r in rows) and rows[0][0] == "caustic_refraction"


def test_unknown_subset_is_a_one_line_error():
    result = CliRunner().invoke(cli, ["list", "corruptions", "--subset", "rain"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: unknown corruption or set 'rain' (see 'audit list corruptions')"
    assert len(result.output.strip().splitlines()) == 1


def test_usage_errors_exit_1_and_help_exits_0():
    assert CliRunner().invoke(cli, ["no-such-command"]).exit_code == 1
    assert CliRunner().invoke(cli, ["--help"]).exit_code == 0
    assert "corruptions" in CliRunner().invoke(cli, ["list", "--help"]).output


def test_profiles_and_conventions():
    assert "cifar-10-c" in CliRunner().invoke(cli, ["list", "profiles"]).output
    assert "torchvision_detection" in CliRunner().invoke(cli, ["list", "conventions"]).output
