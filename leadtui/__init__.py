"""leadtui: capture IndiaMART and TradeIndia leads the moment they arrive."""

__version__ = "0.1.0"
