"""`audit.errors`: messages stay one line even when foreign input smuggles control characters into them."""

from audit.errors import DatasetError


def test_new_lines_and_terminal_escapes_from_data_are_shown_escaped():
    err = DatasetError("file_name 'a\nb\x1b[2J.png' is missing")
    assert str(err) == "file_name 'a\\nb\\x1b[2J.png' is missing"
    assert str(DatasetError("plain é text")) == "plain é text"
