"""dmtool: personal DM outreach on X, one consented conversation at a time."""

__version__ = "0.4.2"
