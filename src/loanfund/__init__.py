"""loanfund: knowledge-value credit loans and the risk compensation fund."""

__version__ = "0.1.0"
