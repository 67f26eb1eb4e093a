"""Assertions shared by the test modules."""


def one_line_error(result, *needles: str) -> None:
    """A CLI result failed with exit 2 and one ``error:`` line on stderr naming ``needles``."""
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for n in needles:
        assert n in err, err
    assert "Traceback" not in result.output
