"""tools/analysis/bad_input_table.py lists what each pytest.raises block caught."""
import sys

from ..conftest import run_tool


def test_the_table_lists_each_caught_error_with_its_first_line(tmp_path):
    module = tmp_path / 'test_rows.py'
    module.write_text('import pytest\n\n'
                      "@pytest.mark.parametrize('key', ['data_roots', 'pipline'])\n"
                      'def test_row(key):\n'
                      '    with pytest.raises(KeyError, match=key):\n'
                      "        raise KeyError(f'unknown key {key}\\nsecond line')\n\n"
                      'def test_not_a_row():\n'
                      '    assert True\n')
    out = tmp_path / 'table.md'
    result = run_tool(
        [sys.executable, 'tools/analysis/bad_input_table.py',
         str(module), '--out',
         str(out)])
    table = out.read_text()
    assert table in result.stdout
    assert table.startswith('2 rows in 2 tests of 1 modules')
    assert "| test_row[data_roots] | KeyError | unknown key data_roots |" in table
    assert "| test_row[pipline] | KeyError | unknown key pipline |" in table
    assert 'second line' not in table and 'test_not_a_row' not in table
