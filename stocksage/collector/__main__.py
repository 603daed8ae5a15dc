"""``python -m stocksage.collector`` -> the typer app in :mod:`stocksage.collector.app`."""

from stocksage.collector.app import app

if __name__ == "__main__":
    app(prog_name="python -m stocksage.collector")
