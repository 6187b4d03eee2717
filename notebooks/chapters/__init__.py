"""The chapters' cells, one module per notebook; notebooks/_build.py writes the .ipynb files."""
